package io.tandem.kvcache;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * {@link PageSummaries} against a brute-force scan of the keys: min and max per page, KV head and
 * channel over the block's valid tokens only; {@link PageSummaries#upperBound} at least every
 * {@code q·k} of the page and equal to the bound recomputed from the brute-force box.
 */
class PageSummariesTest {
    private static final int LAYERS = 3;
    private static final int KV_HEADS = 2;
    private static final int HEAD_DIM = 8;
    private static final int BLOCK = 4;
    private static final int NUM_BLOCKS = 8;

    /** A cache filled with random keys and values; slots past a prompt's last token hold huge keys. */
    private static KvCacheStorage randomStorage(KvDtype dtype, Random rnd) {
        KvCacheStorage storage = new KvCacheStorage(new KvCacheSpec(LAYERS, KV_HEADS, HEAD_DIM, BLOCK, dtype), NUM_BLOCKS);
        for (int layer = 0; layer < LAYERS; layer++) {
            MemorySegment pages = storage.layer(layer);
            for (long at = 0; at < pages.byteSize(); at += dtype.bytes()) {
                put(pages, at, dtype, (float) (rnd.nextGaussian() * 3));
            }
        }
        return storage;
    }

    private static void put(MemorySegment pages, long at, KvDtype dtype, float value) {
        switch (dtype) {
            case F32 -> pages.set(ValueLayout.JAVA_FLOAT_UNALIGNED, at, value);
            case F16 -> pages.set(ValueLayout.JAVA_SHORT_UNALIGNED, at, Float.floatToFloat16(value));
        }
    }

    private static float key(KvCacheStorage storage, int layer, int blockId, int kvHead, int token, int dim) {
        KvCacheSpec spec = storage.spec();
        long at = storage.pageOffset(blockId) + spec.keyOffsetInPage(kvHead, token) + (long) dim * spec.dtype().bytes();
        return switch (spec.dtype()) {
            case F32 -> storage.layer(layer).get(ValueLayout.JAVA_FLOAT_UNALIGNED, at);
            case F16 -> Float.float16ToFloat(storage.layer(layer).get(ValueLayout.JAVA_SHORT_UNALIGNED, at));
        };
    }

    /** Poisons the slots of the last block past {@code numTokens}: a summary that read them would show it. */
    private static void poisonTail(KvCacheStorage storage, int[] blockIds, int numTokens) {
        KvCacheSpec spec = storage.spec();
        int last = blockIds.length - 1;
        for (int layer = 0; layer < LAYERS; layer++) {
            for (int t = numTokens - last * BLOCK; t < BLOCK; t++) {
                for (int h = 0; h < KV_HEADS; h++) {
                    for (int d = 0; d < HEAD_DIM; d++) {
                        long at = storage.pageOffset(blockIds[last]) + spec.keyOffsetInPage(h, t) + (long) d * spec.dtype().bytes();
                        put(storage.layer(layer), at, spec.dtype(), (t + d) % 2 == 0 ? 1000f : -1000f);
                    }
                }
            }
        }
    }

    @ParameterizedTest
    @EnumSource(KvDtype.class)
    void shouldHoldTheMinAndMaxOfEveryChannelOverTheValidTokensOfEachBlock(KvDtype dtype) {
        Random rnd = new Random(7);
        int[] blockIds = {5, 0, 3}; // 11 tokens: the last block holds 3 of 4
        int numTokens = 11;
        try (KvCacheStorage storage = randomStorage(dtype, rnd)) {
            poisonTail(storage, blockIds, numTokens);
            PageSummaries s = PageSummaries.compute(storage, blockIds, numTokens);

            assertThat(s.byteSize()).isEqualTo(LAYERS * 3 * KV_HEADS * 2 * HEAD_DIM * 2);
            for (int layer = 0; layer < LAYERS; layer++) {
                for (int b = 0; b < blockIds.length; b++) {
                    int tokens = Math.min(BLOCK, numTokens - b * BLOCK);
                    for (int h = 0; h < KV_HEADS; h++) {
                        for (int d = 0; d < HEAD_DIM; d++) {
                            float min = Float.POSITIVE_INFINITY;
                            float max = Float.NEGATIVE_INFINITY;
                            for (int t = 0; t < tokens; t++) {
                                float k = key(storage, layer, blockIds[b], h, t, d);
                                min = Math.min(min, k);
                                max = Math.max(max, k);
                            }
                            // f16 keys are stored exactly; f32 ones rounded outward to f16
                            assertThat(s.min(layer, b, h, d)).isEqualTo(Float.float16ToFloat(PageSummaries.roundDown(min)))
                                    .isLessThanOrEqualTo(min);
                            assertThat(s.max(layer, b, h, d)).isEqualTo(Float.float16ToFloat(PageSummaries.roundUp(max)))
                                    .isGreaterThanOrEqualTo(max);
                            if (dtype == KvDtype.F16) {
                                assertThat(s.min(layer, b, h, d)).isEqualTo(min);
                                assertThat(s.max(layer, b, h, d)).isEqualTo(max);
                            }
                        }
                    }
                }
            }
        }
    }

    @ParameterizedTest
    @EnumSource(KvDtype.class)
    void shouldBoundEveryQueryKeyProductOfThePageAndEqualTheBruteForceBound(KvDtype dtype) {
        Random rnd = new Random(11);
        int[] blockIds = {1, 6, 2, 7};
        int numTokens = 14;
        try (KvCacheStorage storage = randomStorage(dtype, rnd)) {
            poisonTail(storage, blockIds, numTokens);
            PageSummaries s = PageSummaries.compute(storage, blockIds, numTokens);
            float[] q = new float[3 + HEAD_DIM];
            for (int trial = 0; trial < 500; trial++) {
                for (int i = 0; i < q.length; i++) {
                    // some exact zeros, some large magnitudes, both signs
                    q[i] = rnd.nextInt(8) == 0 ? 0f : (float) (rnd.nextGaussian() * (rnd.nextBoolean() ? 1 : 50));
                }
                int layer = rnd.nextInt(LAYERS);
                int b = rnd.nextInt(blockIds.length);
                int h = rnd.nextInt(KV_HEADS);
                double bound = s.upperBound(layer, b, h, q, 3);

                double brute = 0;
                for (int d = 0; d < HEAD_DIM; d++) {
                    brute += q[3 + d] == 0 ? 0 : Math.max((double) q[3 + d] * s.min(layer, b, h, d), (double) q[3 + d] * s.max(layer, b, h, d));
                }
                assertThat(bound).isEqualTo(brute);
                int tokens = Math.min(BLOCK, numTokens - b * BLOCK);
                for (int t = 0; t < tokens; t++) {
                    double dot = 0;
                    for (int d = 0; d < HEAD_DIM; d++) {
                        dot += (double) q[3 + d] * key(storage, layer, blockIds[b], h, t, d);
                    }
                    // every term of the bound is at least the key's term, exactly (products of floats in double)
                    assertThat(bound).as("trial %d token %d", trial, t).isGreaterThanOrEqualTo(dot);
                }
            }
        }
    }

    @Test
    void shouldBeTightForAOneTokenPageOfF16Keys() {
        try (KvCacheStorage storage = new KvCacheStorage(new KvCacheSpec(1, 1, 4, BLOCK, KvDtype.F16), 2)) {
            float[] k = {1.5f, -2f, 0.25f, 3f};
            for (int d = 0; d < 4; d++) {
                storage.layer(0).set(ValueLayout.JAVA_SHORT_UNALIGNED, storage.pageOffset(1) + 2L * d, Float.floatToFloat16(k[d]));
            }
            PageSummaries s = PageSummaries.compute(storage, new int[] {1}, 1);
            float[] q = {2f, 1f, -4f, 0.5f};
            assertThat(s.upperBound(0, 0, 0, q, 0)).isEqualTo(3 - 2 - 1 + 1.5);
        }
    }

    @Test
    void shouldRoundOutwardToTheNearestHalfFloats() {
        Random rnd = new Random(3);
        for (int i = 0; i < 100_000; i++) {
            float x = (float) (rnd.nextGaussian() * Math.pow(10, rnd.nextInt(12) - 6));
            float down = Float.float16ToFloat(PageSummaries.roundDown(x));
            float up = Float.float16ToFloat(PageSummaries.roundUp(x));
            assertThat(down).isLessThanOrEqualTo(x);
            assertThat(up).isGreaterThanOrEqualTo(x);
            // the nearest ones: the next half float past each is beyond x
            assertThat(Float.float16ToFloat(nextUp(PageSummaries.roundDown(x)))).isGreaterThan(x);
            assertThat(-Float.float16ToFloat(nextUp(PageSummaries.roundDown(-x)))).isLessThan(x);
        }
        assertThat(Float.float16ToFloat(PageSummaries.roundUp(1e6f))).isEqualTo(Float.POSITIVE_INFINITY);
        assertThat(Float.float16ToFloat(PageSummaries.roundDown(1e6f))).isEqualTo(65504f);
        assertThat(Float.float16ToFloat(PageSummaries.roundDown(-1e6f))).isEqualTo(Float.NEGATIVE_INFINITY);
        assertThat(Float.float16ToFloat(PageSummaries.roundDown(1e-9f))).isEqualTo(0f);
        assertThat(Float.float16ToFloat(PageSummaries.roundUp(1e-9f))).isEqualTo(Float.float16ToFloat((short) 1));
        assertThat(Float.float16ToFloat(PageSummaries.roundDown(-1e-9f))).isEqualTo(-Float.float16ToFloat((short) 1));
    }

    private static short nextUp(short h) {
        int bits = h & 0xFFFF;
        if (bits == 0x8000) {
            return 1;
        }
        return (short) ((bits & 0x8000) == 0 ? bits + 1 : bits - 1);
    }

    @Test
    void shouldRoundTripThroughItsBytesAndRefuseAWrongLength() {
        KvCacheSpec spec = new KvCacheSpec(LAYERS, KV_HEADS, HEAD_DIM, BLOCK, KvDtype.F32);
        try (KvCacheStorage storage = randomStorage(KvDtype.F32, new Random(5))) {
            PageSummaries s = PageSummaries.compute(storage, new int[] {2, 4}, 5);
            PageSummaries back = PageSummaries.fromBytes(spec, 2, ByteBuffer.wrap(s.toByteArray()));
            assertThat(back.toByteArray()).isEqualTo(s.toByteArray());
            assertThat(back.max(2, 1, 1, 7)).isEqualTo(s.max(2, 1, 1, 7));
            assertThat(back.matches(spec, 2)).isTrue();
            assertThat(back.matches(spec, 3)).isFalse();

            assertThatThrownBy(() -> PageSummaries.fromBytes(spec, 3, ByteBuffer.wrap(s.toByteArray())))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("need " + 3 * LAYERS * KV_HEADS * 2 * HEAD_DIM * 2 + " bytes, got " + s.byteSize());
            assertThatThrownBy(() -> PageSummaries.compute(storage, new int[] {2}, 5))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("1 blocks for 5 tokens");
            assertThatThrownBy(() -> new KvHandle("p", 1, 1, new int[] {2, 4, 5}, 9, spec, s))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("do not match");
            assertThat(new KvHandle("p", 1, 1, new int[] {2, 4}, 5, spec).withPageSummaries(s).pageSummaries()).isSameAs(s);
        }
    }

    @Test
    void shouldCapThePromptWhoseSummariesFitAtLlama3Geometry() {
        KvCacheSpec llama3 = new KvCacheSpec(32, 8, 128, 16, KvDtype.F16);
        assertThat(PageSummaries.byteSize(llama3, 128)).as("2048 tokens").isEqualTo(16L << 20);
        assertThat(PageSummaries.maxTokens(llama3)).isEqualTo(8192);
        assertThat(PageSummaries.fits(llama3, 8192)).isTrue();
        assertThat(PageSummaries.fits(llama3, 8193)).isFalse();
    }
}
