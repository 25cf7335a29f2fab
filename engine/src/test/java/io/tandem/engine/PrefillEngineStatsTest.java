package io.tandem.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.tandem.engine.backend.CpuBackend;
import io.tandem.engine.model.GgufModelLoader;
import io.tandem.engine.model.LlamaModel;
import io.tandem.engine.sampling.SamplingParams;
import io.tandem.kvcache.KvDtype;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The load snapshot a prefill engine publishes (the router's {@code /metrics} gauges) around one prompt. */
@Timeout(60)
class PrefillEngineStatsTest {

    @Test
    void shouldReportNothingRunningOnceThePromptIsExportedAndNothingHeldOnceReleased() throws Exception {
        EngineConfig config = new EngineConfig(16, KvDtype.F32, 64L << 20, 8, 64, 1024, Duration.ofSeconds(30));
        ReferenceModel.Case once = ReferenceModel.cases().get(1);
        try (LlamaModel model = GgufModelLoader.load(ReferenceModel.ggufPath(), 0);
             CpuBackend backend = new CpuBackend(2);
             PrefillEngine prefill = new PrefillEngine("prefill-stats", model, backend, config)) {
            CompletableFuture<PrefillResult> prefilled = new CompletableFuture<>();
            prefill.submit(new PrefillRequest("once", once.promptTokenIds(), SamplingParams.greedy(4), 0), new PrefillCallback() {
                @Override
                public void onPrefilled(PrefillResult result) {
                    prefilled.complete(result);
                }

                @Override
                public void onFailed(Throwable error) {
                    prefilled.completeExceptionally(error);
                }
            });
            PrefillResult result = prefilled.get(30, TimeUnit.SECONDS);

            EngineStats exported = await(prefill, s -> s.numExported() == 1);
            assertThat(exported.numRunning()).isZero();
            assertThat(exported.numWaiting()).isZero();
            assertThat(exported.numFreeBlocks()).isEqualTo(exported.numTotalBlocks() - 1);

            prefill.release(result.kvHandle().leaseId());
            EngineStats released = await(prefill, s -> s.numExported() == 0);
            assertThat(released).isEqualTo(new EngineStats(0, 0, 0, released.numTotalBlocks(), released.numTotalBlocks(),
                    released.prefixCacheQueries(), 0, 0, 0));
        }
    }

    /** Polls the published snapshot until {@code condition} holds. */
    static EngineStats await(PrefillEngine engine, Predicate<EngineStats> condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        EngineStats stats = engine.stats();
        while (!condition.test(stats)) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("the condition never held; last stats " + stats);
            }
            Thread.sleep(1);
            stats = engine.stats();
        }
        return stats;
    }
}
