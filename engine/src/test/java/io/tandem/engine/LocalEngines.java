package io.tandem.engine;

import io.tandem.engine.backend.CpuBackend;
import io.tandem.engine.model.LlamaModel;
import io.tandem.engine.sampling.SamplingParams;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.agrona.collections.IntArrayList;

/**
 * A prefill engine and a decode engine joined by the in-process KV transport, driven
 * synchronously: the disaggregated path without a router, for tests.
 */
public final class LocalEngines implements AutoCloseable {
    public final CpuBackend backend;
    public final PrefillEngine prefill;
    public final DecodeEngine decode;

    public LocalEngines(LlamaModel model, EngineConfig config, int threads) {
        this(model, config, config, threads);
    }

    /** Engines with their own configurations (e.g. a KV pool far smaller on the decode side). */
    public LocalEngines(LlamaModel model, EngineConfig prefillConfig, EngineConfig decodeConfig, int threads) {
        backend = new CpuBackend(threads);
        prefill = new PrefillEngine("prefill-test", model, backend, prefillConfig);
        decode = new DecodeEngine(model, backend, decodeConfig, new InProcessKvTransport(prefill));
    }

    /** Generates (first token from prefill, the rest from decode) and returns every generated id. */
    public int[] generate(String id, int[] prompt, SamplingParams sampling, long seed) throws Exception {
        return start(id, prompt, sampling, seed).get(60, TimeUnit.SECONDS);
    }

    /** Starts a generation; the future completes with every generated id. */
    public CompletableFuture<int[]> start(String id, int[] prompt, SamplingParams sampling, long seed) {
        return start(id, prompt, sampling, seed, CompletableFuture.completedFuture(null));
    }

    /**
     * Starts a generation whose decode is submitted only once {@code decodeGate} completes (after
     * its prefill), so a test can hand many prefilled sequences to the decode engine at once.
     */
    public CompletableFuture<int[]> start(String id, int[] prompt, SamplingParams sampling, long seed,
                                          CompletableFuture<Void> decodeGate) {
        CompletableFuture<int[]> done = new CompletableFuture<>();
        IntArrayList out = new IntArrayList();
        TokenSink sink = new TokenSink() {
            @Override
            public void onToken(int tokenId) {
                out.addInt(tokenId);
            }

            @Override
            public void onFinish(FinishReason reason) {
                done.complete(out.toIntArray());
            }

            @Override
            public void onError(Throwable error) {
                done.completeExceptionally(error);
            }
        };
        boolean queued = prefill.submit(new PrefillRequest(id, prompt, sampling, seed), new PrefillCallback() {
            @Override
            public void onPrefilled(PrefillResult r) {
                out.addInt(r.firstToken());
                if (sampling.maxTokens() == 1) {
                    prefill.release(r.kvHandle().leaseId());
                    done.complete(out.toIntArray());
                    return;
                }
                decodeGate.thenRun(() ->
                        decode.submit(new DecodeRequest(id, prompt, r.firstToken(), r.kvHandle(), sampling, seed), sink));
            }

            @Override
            public void onFailed(Throwable error) {
                done.completeExceptionally(error);
            }
        });
        if (!queued) {
            done.completeExceptionally(new IllegalStateException("prefill queue full"));
        }
        return done;
    }

    @Override
    public void close() {
        decode.close();
        prefill.close();
        backend.close();
    }
}
