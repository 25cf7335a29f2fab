package io.tandem.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.tandem.engine.backend.CpuBackend;
import io.tandem.engine.model.GgufModelLoader;
import io.tandem.engine.model.LlamaModel;
import io.tandem.kvcache.BlockHasher;
import io.tandem.kvcache.KvDtype;
import java.time.Duration;
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
            PrefillResult result = PrefillEngineLeaseTest.prefill(prefill, once.promptTokenIds());

            EngineStats exported = await(prefill, s -> s.numExported() == 1);
            assertThat(exported.numRunning()).isZero();
            assertThat(exported.numWaiting()).isZero();
            assertThat(exported.numFreeBlocks()).isEqualTo(exported.numTotalBlocks() - 1);

            prefill.release(result.kvHandle().leaseId());
            EngineStats released = await(prefill, s -> s.numExported() == 0);
            assertThat(released).isEqualTo(new EngineStats(0, 0, 0, released.numTotalBlocks(), released.numTotalBlocks(),
                    released.prefixCacheQueries(), 0, 0, 0, released.cachedBlockHashes()));
        }
    }

    @Test
    void shouldPublishTheRouterComputableHashesOfCachedBlocksAndDropThemOnEviction() throws Exception {
        // one sequence of the 2048-token context: 128 blocks of 16 tokens
        EngineConfig config = new EngineConfig(16, KvDtype.F32, 64L << 20, 1, 64, 1024, Duration.ofSeconds(30));
        int[] shortPrompt = tokens(40, 1);
        try (LlamaModel model = GgufModelLoader.load(ReferenceModel.ggufPath(), 0);
             CpuBackend backend = new CpuBackend(2);
             PrefillEngine prefill = new PrefillEngine("prefill-hashes", model, backend, config)) {
            assertThat(prefill.stats().numTotalBlocks()).isEqualTo(128);
            BlockHasher router = new BlockHasher(16, model.id());
            long[] shortHashes = new long[2];
            assertThat(router.hashFullBlocks(shortPrompt, shortPrompt.length, router.extraHash(null), shortHashes)).isEqualTo(2);

            prefill.release(PrefillEngineLeaseTest.prefill(prefill, shortPrompt).kvHandle().leaseId());
            EngineStats afterShort = await(prefill, s -> s.prefixCacheQueries() == 40 && s.numExported() == 0
                    && s.numRunning() == 0);
            assertThat(afterShort.cachedBlockHashes().blockSize()).isEqualTo(16);
            assertThat(afterShort.cachedBlockHashes().toArray()).containsExactly(shortHashes);

            // four prompts of 32 blocks: every free block is handed out again, the short prompt's two last
            long[] longHashes = new long[31];
            for (int p = 0; p < 4; p++) {
                int[] longPrompt = tokens(500, 7 + p);
                prefill.release(PrefillEngineLeaseTest.prefill(prefill, longPrompt).kvHandle().leaseId());
                router.hashFullBlocks(longPrompt, longPrompt.length, router.extraHash(null), longHashes);
                long queried = 40 + 500L * (p + 1);
                EngineStats stats = await(prefill, s -> s.prefixCacheQueries() == queried && s.numExported() == 0
                        && s.numRunning() == 0);
                assertThat(stats.cachedBlockHashes().contains(shortHashes[0])).as("after %d", p).isEqualTo(p < 3);
                assertThat(stats.cachedBlockHashes().size()).isEqualTo(2 + 31 * (p + 1) - (p < 3 ? 0 : 2));
            }
            EngineStats afterLong = prefill.stats();
            assertThat(afterLong.cachedBlockHashes().contains(shortHashes[1])).isFalse();
            for (long h : longHashes) {
                assertThat(afterLong.cachedBlockHashes().contains(h)).isTrue();
            }
            // freed tail-first: the last prompt's first block is the last to be evicted, so it is listed first
            assertThat(afterLong.cachedBlockHashes().toArray()[0]).isEqualTo(longHashes[0]);
        }
    }

    private static int[] tokens(int n, int seed) {
        int[] t = new int[n];
        for (int i = 0; i < n; i++) {
            t[i] = 1 + (i * 31 + seed * 17) % 500;
        }
        return t;
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
