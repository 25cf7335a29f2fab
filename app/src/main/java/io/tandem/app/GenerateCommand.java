package io.tandem.app;

import io.tandem.engine.FinishReason;
import io.tandem.engine.model.LlamaModel;
import io.tandem.engine.sampling.SamplingParams;
import io.tandem.router.CompletionRequest;
import io.tandem.router.GenerationListener;
import io.tandem.router.ServingMetrics;
import io.tandem.router.Usage;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code tandem generate}: one completion through the same prefill → decode path as the server,
 * printed as it streams; timings on stderr (prefill and decode tokens/s, as llama.cpp's bench
 * measures them: prompt tokens / time to first token, and (generated − 1) / time after it).
 */
@Command(name = "generate", mixinStandardHelpOptions = true, description = "Print one completion and its speed.")
final class GenerateCommand implements Callable<Integer> {
    @Mixin
    ModelOptions modelOptions = new ModelOptions();

    @Mixin
    EngineOptions engineOptions = new EngineOptions();

    @Option(names = "--prompt", paramLabel = "TEXT", description = "Prompt text.")
    String prompt;

    @Option(names = "--prompt-tokens", paramLabel = "N", defaultValue = "0",
            description = "Instead of --prompt, a synthetic prompt of N ordinary token ids (as llama.cpp-ref's bench makes).")
    int promptTokens;

    @Option(names = "--max-tokens", paramLabel = "N", defaultValue = "64", description = "Tokens to generate. Default: ${DEFAULT-VALUE}.")
    int maxTokens;

    @Option(names = "--temperature", paramLabel = "T", defaultValue = "0", description = "0 = greedy. Default: ${DEFAULT-VALUE}.")
    float temperature;

    @Option(names = "--top-p", paramLabel = "P", defaultValue = "1") float topP;

    @Option(names = "--top-k", paramLabel = "K", defaultValue = "-1") int topK;

    @Option(names = "--sampling-seed", paramLabel = "N", description = "Seed of the sampler (random if unset).")
    Long samplingSeed;

    @Option(names = "--ignore-eos", description = "Keep generating past the end-of-sequence token.")
    boolean ignoreEos;

    @Option(names = "--warmup", paramLabel = "N", defaultValue = "0",
            description = "Untimed runs of the same request first, so the JIT has compiled the kernels (llama-bench warms up too). Default: ${DEFAULT-VALUE}.")
    int warmup;

    @Override
    public Integer call() throws Exception {
        if ((prompt == null) == (promptTokens <= 0)) {
            throw new IllegalArgumentException("give exactly one of --prompt and --prompt-tokens");
        }
        LlamaModel model = modelOptions.load();
        try (LocalDeployment local = new LocalDeployment(model, engineOptions.toConfig(), engineOptions.threadCount(), 1,
                new ServingMetrics(new PrometheusRegistry(), model.id()))) {
            SamplingParams sampling = new SamplingParams(temperature, topP, topK, maxTokens, samplingSeed, List.of(), ignoreEos);
            int[] ids = promptTokens > 0 ? syntheticPrompt(model, promptTokens) : null;
            CompletionRequest request = new CompletionRequest("generate", null, ids == null ? prompt : null, ids, sampling);
            for (int i = 0; i < warmup; i++) {
                // Its own cache salt: a warm-up must not leave the timed prompt in the prefix cache.
                runQuietly(local, new CompletionRequest("warmup-" + i, null, request.prompt(), request.promptTokenIds(),
                        sampling, "warmup-" + i));
            }
            CompletableFuture<Usage> done = new CompletableFuture<>();
            long[] times = new long[3]; // start, first token, last token
            times[0] = System.nanoTime();
            if (prompt != null) {
                System.out.print(prompt);
            }
            local.router.generate(request, new GenerationListener() {
                @Override
                public void onOutput(int[] tokenIds, String textDelta) {
                    long now = System.nanoTime();
                    if (times[1] == 0) {
                        times[1] = now;
                    }
                    times[2] = now;
                    System.out.print(textDelta);
                    System.out.flush();
                }

                @Override
                public void onFinish(FinishReason reason, Usage usage) {
                    done.complete(usage);
                }

                @Override
                public void onError(Throwable error) {
                    done.completeExceptionally(error);
                }
            });
            Usage usage = done.join();
            System.out.println();
            double prefillSeconds = (times[1] - times[0]) / 1e9;
            double decodeSeconds = (times[2] - times[1]) / 1e9;
            System.err.printf("tandem generate: model %s, %d threads, %d warm-up run(s)%n", model.id(),
                    engineOptions.threadCount(), warmup);
            System.err.printf("  prompt   %5d tokens in %8.3f s = %9.2f tokens/s (prefill, to first token)%n",
                    usage.promptTokens(), prefillSeconds, usage.promptTokens() / prefillSeconds);
            System.err.printf("  generated %4d tokens; %d after the first in %8.3f s = %9.2f tokens/s (decode)%n",
                    usage.completionTokens(), usage.completionTokens() - 1, decodeSeconds,
                    (usage.completionTokens() - 1) / decodeSeconds);
        }
        return 0;
    }

    private static void runQuietly(LocalDeployment local, CompletionRequest request) {
        CompletableFuture<Void> done = new CompletableFuture<>();
        local.router.generate(request, new GenerationListener() {
            @Override
            public void onOutput(int[] tokenIds, String textDelta) {}

            @Override
            public void onFinish(FinishReason reason, Usage usage) {
                done.complete(null);
            }

            @Override
            public void onError(Throwable error) {
                done.completeExceptionally(error);
            }
        });
        done.join();
    }

    /** The prompt llama.cpp-ref's bench.mjs builds for a model with BOS: ids 259 + (i·7919 mod 200), no BOS. */
    private static int[] syntheticPrompt(LlamaModel model, int n) {
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = 256 + 3 + (i * 7919) % 200;
        }
        return ids;
    }
}
