package io.tandem.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.tandem.engine.backend.CpuBackend;
import io.tandem.engine.model.GgufModelLoader;
import io.tandem.engine.model.LlamaModel;
import io.tandem.engine.sampling.SamplingParams;
import io.tandem.kvcache.KvCacheSpec;
import io.tandem.kvcache.KvCacheStorage;
import io.tandem.kvcache.KvDtype;
import io.tandem.kvcache.KvHandle;
import io.tandem.kvcache.PageSummaries;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The page summaries a real prefill of stories260K exports: equal to a scalar recomputation from
 * the prompt's final keys in the engine's KV memory (every block, the partial last one over its
 * valid tokens only), after a prefill in 8-token chunks, on an early handle (which goes out without
 * them) and over a cached prefix; none when turned off.
 */
@Timeout(60)
class PrefillPageSummariesTest {
    private static LlamaModel model;
    private static CpuBackend backend;

    @BeforeAll
    static void load() throws Exception {
        model = GgufModelLoader.load(ReferenceModel.ggufPath(), 0);
        backend = new CpuBackend(1);
    }

    @AfterAll
    static void close() {
        backend.close();
        model.close();
    }

    /** 41 tokens: lily_park's prompt and its continuation; blocks of 16 → 3 blocks, the last holding 9. */
    private static int[] prompt() {
        ReferenceModel.Case c = ReferenceModel.cases().get(2);
        int[] p = new int[41];
        System.arraycopy(c.promptTokenIds(), 0, p, 0, c.promptTokenIds().length);
        System.arraycopy(c.generatedTokenIds(), 0, p, c.promptTokenIds().length, p.length - c.promptTokenIds().length);
        return p;
    }

    private static PrefillEngine newEngine(KvDtype dtype, boolean pageSummaries) {
        return new PrefillEngine("prefill-summaries", model, backend,
                new EngineConfig(16, dtype, 16L << 20, 4, 8, 1024, Duration.ofSeconds(30)), pageSummaries);
    }

    @ParameterizedTest
    @EnumSource(KvDtype.class)
    void shouldExportTheMinAndMaxOfThePromptsFinalKeysPerPageAndKvHead(KvDtype dtype) throws Exception {
        try (PrefillEngine prefill = newEngine(dtype, true)) {
            PrefillResult result = prefill(prefill, prompt(), false).result.get(30, TimeUnit.SECONDS);
            assertMatchesKeys(prefill.storage(), result.kvHandle());
        }
    }

    @Test
    void shouldSendTheEarlyHandleWithoutSummariesAndTheResultWithThem() throws Exception {
        try (PrefillEngine prefill = newEngine(KvDtype.F32, true)) {
            Outcome outcome = prefill(prefill, prompt(), true);
            PrefillResult result = outcome.result.get(30, TimeUnit.SECONDS);
            KvHandle early = outcome.earlyHandle.get(1, TimeUnit.SECONDS);
            assertThat(early.pageSummaries()).as("keys not computed when the early handle goes out").isNull();
            assertThat(result.kvHandle().leaseId()).isEqualTo(early.leaseId());
            assertThat(result.kvHandle().blockIds()).isEqualTo(early.blockIds());
            assertMatchesKeys(prefill.storage(), result.kvHandle());
        }
    }

    @Test
    void shouldSummarizeTheCachedPrefixBlocksOfAPromptToo() throws Exception {
        try (PrefillEngine prefill = newEngine(KvDtype.F32, true)) {
            PrefillResult first = prefill(prefill, prompt(), false).result.get(30, TimeUnit.SECONDS);
            prefill.release(first.kvHandle().leaseId());
            PrefillResult second = prefill(prefill, prompt(), false).result.get(30, TimeUnit.SECONDS);

            // the two full blocks (32 tokens) came from the cache
            PrefillEngineStatsTest.await(prefill, st -> st.prefixCacheHits() == 32);
            assertThat(second.kvHandle().blockIds()[0]).isEqualTo(first.kvHandle().blockIds()[0]);
            assertMatchesKeys(prefill.storage(), second.kvHandle());
            PageSummaries cached = second.kvHandle().pageSummaries();
            PageSummaries computed = first.kvHandle().pageSummaries();
            for (int layer = 0; layer < cached.numLayers(); layer++) {
                for (int b = 0; b < 2; b++) {
                    for (int h = 0; h < cached.numKvHeads(); h++) {
                        for (int d = 0; d < cached.headDim(); d++) {
                            assertThat(cached.min(layer, b, h, d)).isEqualTo(computed.min(layer, b, h, d));
                            assertThat(cached.max(layer, b, h, d)).isEqualTo(computed.max(layer, b, h, d));
                        }
                    }
                }
            }
        }
    }

    @Test
    void shouldExportNoSummariesWhenTurnedOff() throws Exception {
        try (PrefillEngine prefill = newEngine(KvDtype.F32, false)) {
            PrefillResult result = prefill(prefill, prompt(), false).result.get(30, TimeUnit.SECONDS);
            assertThat(prefill.pageSummaries()).isFalse();
            assertThat(result.kvHandle().pageSummaries()).isNull();
        }
    }

    /** Recomputes, one key element at a time, what the summaries must hold, and compares. */
    private static void assertMatchesKeys(KvCacheStorage storage, KvHandle handle) {
        KvCacheSpec spec = storage.spec();
        PageSummaries s = handle.pageSummaries();
        assertThat(s).isNotNull();
        assertThat(s.numBlocks()).isEqualTo(3);
        assertThat(s.numLayers()).isEqualTo(spec.numLayers());
        int[] blocks = handle.blockIds();
        int spread = 0;
        for (int layer = 0; layer < spec.numLayers(); layer++) {
            for (int b = 0; b < blocks.length; b++) {
                int tokens = Math.min(spec.blockSize(), handle.numTokens() - b * spec.blockSize());
                for (int h = 0; h < spec.numKvHeads(); h++) {
                    for (int d = 0; d < spec.headDim(); d++) {
                        float min = Float.POSITIVE_INFINITY;
                        float max = Float.NEGATIVE_INFINITY;
                        for (int t = 0; t < tokens; t++) {
                            long at = storage.pageOffset(blocks[b]) + spec.keyOffsetInPage(h, t) + (long) d * spec.dtype().bytes();
                            float k = spec.dtype() == KvDtype.F16
                                    ? Float.float16ToFloat(storage.layer(layer).get(ValueLayout.JAVA_SHORT_UNALIGNED, at))
                                    : storage.layer(layer).get(ValueLayout.JAVA_FLOAT_UNALIGNED, at);
                            min = Math.min(min, k);
                            max = Math.max(max, k);
                        }
                        String where = "layer " + layer + " block " + b + " head " + h + " dim " + d;
                        spread += min < max ? 1 : 0;
                        if (spec.dtype() == KvDtype.F16) {
                            assertThat(s.min(layer, b, h, d)).as(where).isEqualTo(min);
                            assertThat(s.max(layer, b, h, d)).as(where).isEqualTo(max);
                        } else {
                            // f32 keys: rounded outward to the nearest half float (relative step 2^-10, subnormal 2^-24)
                            assertThat(s.min(layer, b, h, d)).as(where).isLessThanOrEqualTo(min)
                                    .isGreaterThanOrEqualTo(min - Math.abs(min) / 1024 - 0x1p-24f);
                            assertThat(s.max(layer, b, h, d)).as(where).isGreaterThanOrEqualTo(max)
                                    .isLessThanOrEqualTo(max + Math.abs(max) / 1024 + 0x1p-24f);
                        }
                    }
                }
            }
        }
        assertThat(spread).as("channels whose keys differ across a block's tokens (computed keys, not zeroed memory)")
                .isGreaterThan(spec.numLayers() * blocks.length * spec.numKvHeads() * spec.headDim() / 2);
    }

    private record Outcome(CompletableFuture<KvHandle> earlyHandle, CompletableFuture<PrefillResult> result) {}

    private static Outcome prefill(PrefillEngine prefill, int[] prompt, boolean early) {
        Outcome outcome = new Outcome(new CompletableFuture<>(), new CompletableFuture<>());
        PrefillRequest request = new PrefillRequest("summaries", prompt, SamplingParams.greedy(4), 0).withEarlyHandle(early);
        assertThat(prefill.submit(request, new PrefillCallback() {
            @Override
            public void onKvHandle(KvHandle handle) {
                outcome.earlyHandle.complete(handle);
            }

            @Override
            public void onPrefilled(PrefillResult result) {
                outcome.result.complete(result);
            }

            @Override
            public void onFailed(Throwable error) {
                outcome.result.completeExceptionally(error);
            }
        })).isTrue();
        return outcome;
    }
}
