package io.tandem.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.tandem.engine.model.GgufModelLoader;
import io.tandem.engine.model.LlamaModel;
import io.tandem.engine.sampling.SamplingParams;
import io.tandem.kvcache.KvDtype;
import java.time.Duration;
import java.util.Arrays;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Prefix caching on the prefill engine: only the uncached suffix is computed, and tokens do not change. */
@Timeout(120)
class PrefixCachingTest {
    private static LlamaModel model;
    private static int[] shared;

    @BeforeAll
    static void load() throws Exception {
        model = GgufModelLoader.load(ReferenceModel.ggufPath(), 512);
        String story = ReferenceModel.cases().get(0).text();
        shared = Arrays.copyOf(model.tokenizer().encode(story, true, false), 100); // 6 full blocks + 4 tokens
    }

    @AfterAll
    static void close() {
        model.close();
    }

    private static EngineConfig config(boolean prefixCaching) {
        return new EngineConfig(16, KvDtype.F32, 64L << 20, 8, 64, 1024, Duration.ofSeconds(30), prefixCaching);
    }

    private static int[] withSuffix(int... suffix) {
        int[] p = Arrays.copyOf(shared, shared.length + suffix.length);
        System.arraycopy(suffix, 0, p, shared.length, suffix.length);
        return p;
    }

    @Test
    void shouldComputeOnlyTheUncachedSuffixAndReturnTheSameTokens() throws Exception {
        int[] first = withSuffix(300, 301, 302);
        int[] second = withSuffix(410, 411, 412, 413, 414);
        SamplingParams greedy = SamplingParams.greedy(40);
        int[] expectedSecond;
        try (LocalEngines uncached = new LocalEngines(model, config(false), 2)) {
            uncached.generate("a", first, greedy, 0);
            expectedSecond = uncached.generate("b", second, greedy, 0);
            assertThat(uncached.prefill.stats().prefixCacheHits()).isZero();
        }
        try (LocalEngines cached = new LocalEngines(model, config(true), 2)) {
            cached.generate("a", first, greedy, 0);
            awaitStats(cached, 1);
            EngineStats before = cached.prefill.stats();
            assertThat(before.prefixCacheHits()).isZero();
            int[] got = cached.generate("b", second, greedy, 0);
            awaitStats(cached, 2);
            EngineStats after = cached.prefill.stats();
            // 105 prompt tokens: the 6 full blocks (96 tokens) of the shared prefix hit, 9 are computed
            assertThat(after.prefixCacheQueries() - before.prefixCacheQueries()).isEqualTo(second.length);
            assertThat(after.prefixCacheHits() - before.prefixCacheHits()).isEqualTo(96);
            assertThat(got).containsExactly(expectedSecond);
            ReferenceOutputsTest.awaitAllBlocksFree(cached);
        }
    }

    @Test
    void shouldNotHitAcrossCacheSalts() throws Exception {
        try (LocalEngines engines = new LocalEngines(model, config(true), 2)) {
            SamplingParams greedy = SamplingParams.greedy(2);
            int[] prompt = withSuffix(300);
            engines.prefill.submit(new PrefillRequest("a", prompt, greedy, 0, "tenant-a"), releaseOnDone(engines));
            awaitStats(engines, 1);
            engines.prefill.submit(new PrefillRequest("b", prompt, greedy, 0, "tenant-b"), releaseOnDone(engines));
            awaitStats(engines, 2);
            assertThat(engines.prefill.stats().prefixCacheHits()).isZero();
            engines.prefill.submit(new PrefillRequest("c", prompt, greedy, 0, "tenant-a"), releaseOnDone(engines));
            awaitStats(engines, 3);
            assertThat(engines.prefill.stats().prefixCacheHits()).isEqualTo(96);
            ReferenceOutputsTest.awaitAllBlocksFree(engines);
        }
    }

    private static PrefillCallback releaseOnDone(LocalEngines engines) {
        return new PrefillCallback() {
            @Override
            public void onPrefilled(PrefillResult result) {
                engines.prefill.release(result.kvHandle().leaseId());
            }

            @Override
            public void onFailed(Throwable error) {
                throw new AssertionError(error);
            }
        };
    }

    /** Waits until {@code n} prompts have been looked up and no lease is held. */
    private static void awaitStats(LocalEngines engines, int n) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (true) {
            EngineStats s = engines.prefill.stats();
            if (s.prefixCacheQueries() >= (long) n * shared.length && s.numExported() == 0 && s.numWaiting() == 0) {
                return;
            }
            assertThat(System.nanoTime()).as("prefill stats %s", s).isLessThan(deadline);
            Thread.sleep(1);
        }
    }
}
