package io.tandem.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.tandem.engine.model.GgufModelLoader;
import io.tandem.engine.model.LlamaModel;
import io.tandem.engine.sampling.SamplingParams;
import io.tandem.kvcache.KvDtype;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Continuous batching must not change a single token: sequences that join and leave between
 * steps, share forward passes, or get preempted and recomputed produce exactly what they produce
 * alone (greedy, stories260K).
 */
@Timeout(180)
class ContinuousBatchingTest {
    private static final int CONTEXT = 256;
    private static LlamaModel model;
    private static List<int[]> prompts;

    @BeforeAll
    static void load() throws Exception {
        model = GgufModelLoader.load(ReferenceModel.ggufPath(), CONTEXT);
        String story = ReferenceModel.cases().get(0).text();
        prompts = new ArrayList<>();
        for (int i = 0; i < 16; i++) {
            // prompts of 1 to ~100 tokens: prefixes of the reference story at different cuts
            int chars = (i * 37) % story.length();
            prompts.add(model.tokenizer().encode(story.substring(0, chars), true, false));
        }
    }

    @AfterAll
    static void close() {
        model.close();
    }

    private static int maxTokens(int i) {
        return 20 + (i * 13) % 60;
    }

    private static List<int[]> oneAtATime(EngineConfig config) throws Exception {
        List<int[]> out = new ArrayList<>();
        try (LocalEngines engines = new LocalEngines(model, config, 2)) {
            for (int i = 0; i < prompts.size(); i++) {
                out.add(engines.generate("solo-" + i, prompts.get(i), SamplingParams.greedy(maxTokens(i)), 0));
            }
        }
        return out;
    }

    @Test
    void shouldProduceTheSameTokensBatchedAsOneAtATimeWithStaggeredArrivals() throws Exception {
        EngineConfig config = new EngineConfig(16, KvDtype.F32, 64L << 20, 16, 64, 1024, Duration.ofSeconds(30));
        List<int[]> expected = oneAtATime(config);
        try (LocalEngines engines = new LocalEngines(model, config, 2)) {
            List<CompletableFuture<int[]>> futures = new ArrayList<>();
            for (int wave = 0; wave < 4; wave++) {
                for (int i = wave * 4; i < wave * 4 + 4; i++) {
                    futures.add(engines.start("batched-" + i, prompts.get(i), SamplingParams.greedy(maxTokens(i)), 0));
                }
                // the next wave arrives while this one is decoding
                await(() -> engines.decode.stats().numRunning() > 0 || futures.stream().allMatch(CompletableFuture::isDone));
            }
            for (int i = 0; i < futures.size(); i++) {
                assertThat(futures.get(i).get(60, TimeUnit.SECONDS)).as("prompt %d", i).containsExactly(expected.get(i));
            }
            ReferenceOutputsTest.awaitAllBlocksFree(engines);
        }
    }

    @Test
    void shouldPreemptByRecomputeWhenBlocksRunOutAndStillProduceTheSameTokens() throws Exception {
        EngineConfig roomy = new EngineConfig(16, KvDtype.F32, 64L << 20, 16, 64, 1024, Duration.ofSeconds(30));
        List<int[]> expected = oneAtATime(roomy);
        var c = model.config();
        long blockBytes = 2L * c.numLayers() * c.numKvHeads() * 16 * c.headDim() * 4;
        // 24 decode blocks = 384 tokens of KV: enough for any one sequence (<= 256 tokens), far from all 16
        EngineConfig tight = new EngineConfig(16, KvDtype.F32, 24 * blockBytes, 16, 64, 1024, Duration.ofSeconds(30));
        try (LocalEngines engines = new LocalEngines(model, roomy, tight, 2)) {
            // every prompt is prefilled (and held by the roomy prefill side) before any decode
            // starts, so all 16 reach the tight decode engine together however the two engine
            // threads are scheduled: it must preempt to finish them
            CompletableFuture<Void> decodeGate = new CompletableFuture<>();
            List<CompletableFuture<int[]>> futures = new ArrayList<>();
            for (int i = 0; i < prompts.size(); i++) {
                futures.add(engines.start("tight-" + i, prompts.get(i), SamplingParams.greedy(maxTokens(i)), 0, decodeGate));
            }
            await(() -> engines.prefill.stats().numExported() == prompts.size());
            decodeGate.complete(null);
            for (int i = 0; i < futures.size(); i++) {
                assertThat(futures.get(i).get(120, TimeUnit.SECONDS)).as("prompt %d", i).containsExactly(expected.get(i));
            }
            assertThat(engines.decode.stats().numPreemptions()).isPositive();
            ReferenceOutputsTest.awaitAllBlocksFree(engines);
        }
    }

    /** Greedy to the end of the context, EOS ignored. */
    private static SamplingParams toContextEnd(int i) {
        return new SamplingParams(0f, 1f, -1, CONTEXT - prompts.get(i).length, null, List.of(), true);
    }

    @Test
    void shouldKeepTheLeasesOfSequencesWaitingForAdmissionPastTheLeaseTimeout() throws Exception {
        // one sequence at a time on the decode side: the others wait for admission, their KV still
        // on the prefill side, far longer than its 300 ms lease
        Duration lease = Duration.ofMillis(300);
        EngineConfig oneAtATime = new EngineConfig(16, KvDtype.F32, 64L << 20, 1, 64, 1024, lease);
        List<int[]> expected = new ArrayList<>();
        EngineConfig roomy = new EngineConfig(16, KvDtype.F32, 64L << 20, 16, 64, 1024, Duration.ofSeconds(30));
        try (LocalEngines engines = new LocalEngines(model, roomy, 2)) {
            for (int i = 0; i < prompts.size(); i++) {
                expected.add(engines.generate("solo-" + i, prompts.get(i), toContextEnd(i), 0));
            }
        }
        try (LocalEngines engines = new LocalEngines(model, oneAtATime, 2)) {
            long start = System.nanoTime();
            List<CompletableFuture<int[]>> futures = new ArrayList<>();
            for (int i = 0; i < prompts.size(); i++) {
                futures.add(engines.start("waiting-" + i, prompts.get(i), toContextEnd(i), 0));
            }
            for (int i = 0; i < futures.size(); i++) {
                assertThat(futures.get(i).get(60, TimeUnit.SECONDS)).as("prompt %d", i).containsExactly(expected.get(i));
            }
            long elapsed = System.nanoTime() - start;
            assertThat(elapsed).as("the last sequence waited longer than a lease").isGreaterThan(2 * lease.toNanos());
            assertThat(engines.prefill.numLeasesExpired()).isZero();
            assertThat(engines.prefill.numLeasesRenewed()).isPositive();
            ReferenceOutputsTest.awaitAllBlocksFree(engines);
        }
    }

    @Test
    void shouldFreeTheBlocksOfACancelledSequenceAtTheNextStep() throws Exception {
        EngineConfig config = new EngineConfig(16, KvDtype.F32, 64L << 20, 16, 64, 1024, Duration.ofSeconds(30));
        try (LocalEngines engines = new LocalEngines(model, config, 2)) {
            SamplingParams longRun = new SamplingParams(0f, 1f, -1, CONTEXT - prompts.get(3).length, null, List.of(), true);
            CompletableFuture<int[]> f = engines.start("to-cancel", prompts.get(3), longRun, 0);
            await(() -> engines.decode.stats().numRunning() == 1);
            engines.decode.cancel("to-cancel");
            int[] got = f.get(30, TimeUnit.SECONDS);
            assertThat(got.length).isLessThan(longRun.maxTokens());
            ReferenceOutputsTest.awaitAllBlocksFree(engines);
        }
    }

    private static void await(BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("condition not met within 30 s");
            }
            Thread.sleep(1);
        }
    }

}
