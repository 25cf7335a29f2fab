package io.tandem.engine.backend;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.tandem.engine.tensor.GgmlType;
import io.tandem.engine.tensor.Quantizer;
import io.tandem.engine.tensor.RandomWeights;
import io.tandem.engine.tensor.WeightMatrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@link CpuBackend} with 1 and 3 threads against {@link ScalarKernels}. Matmul tolerance: 1e-5
 * of {@code sum |w * x|} (only the order of float additions differs); RMSNorm and RoPE follow
 * ggml's float arithmetic step by step and must match bit for bit.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class CpuBackendTest {
    private static final double MATMUL_TOLERANCE = 1e-5;
    /** Large enough to be split over threads: 1031 * 512 multiply-adds per token > MIN_PARALLEL_MACS. */
    private static final int ROWS = 1031;
    private static final int COLS = 512;

    private Arena arena;
    private CpuBackend one;
    private CpuBackend three;

    @BeforeAll
    void start() {
        arena = Arena.ofShared();
        one = new CpuBackend(1);
        three = new CpuBackend(3);
    }

    @AfterAll
    void stop() {
        one.close();
        three.close();
        arena.close();
    }

    @ParameterizedTest
    @EnumSource(GgmlType.class)
    void shouldMatchScalarMatmulWithOneAndThreeThreads(GgmlType type) {
        WeightMatrix w = RandomWeights.of(type, ROWS, COLS, 31, arena);
        assertThat((long) ROWS * COLS).isGreaterThan(CpuBackend.MIN_PARALLEL_MACS);
        for (int n : new int[] {1, 3, 17}) {
            float[] x = RandomWeights.floats(n * COLS, 32 + n);
            for (CpuBackend backend : new CpuBackend[] {one, three}) {
                float[] out = new float[n * ROWS];
                backend.matmul(w, x, out, n);
                assertMatchesScalar(w, x, n, out, type + " threads=" + backend.threads() + " n=" + n);
            }
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 5})
    void shouldFuseTwoAndThreeProjectionsWithTheResultsOfSeparateMatmuls(int n) {
        WeightMatrix q = RandomWeights.of(GgmlType.Q8_0, 1024, COLS, 35, arena);
        WeightMatrix k = RandomWeights.of(GgmlType.Q8_0, 258, COLS, 36, arena);
        WeightMatrix v = RandomWeights.of(GgmlType.Q4_0, 258, COLS, 37, arena);
        float[] x = RandomWeights.floats(n * COLS, 38);
        float[][] fused = {new float[n * 1024], new float[n * 258], new float[n * 258]};
        three.matmul3(q, k, v, x, fused[0], fused[1], fused[2], n);
        float[][] pair = {new float[n * 1024], new float[n * 258]};
        three.matmul2(q, k, x, pair[0], pair[1], n);
        WeightMatrix[] ws = {q, k, v};
        for (int i = 0; i < 3; i++) {
            assertMatchesScalar(ws[i], x, n, fused[i], "matmul3 output " + i);
        }
        assertMatchesScalar(q, x, n, pair[0], "matmul2 output 0");
        assertMatchesScalar(k, x, n, pair[1], "matmul2 output 1");
    }

    private static void assertMatchesScalar(WeightMatrix w, float[] x, int n, float[] out, String what) {
        double[] magnitude = new double[n * w.rows()];
        double[] expected = ScalarKernels.matmul(w, x, n, magnitude);
        for (int i = 0; i < expected.length; i++) {
            assertThat((double) out[i]).as("%s i=%d", what, i)
                    .isCloseTo(expected[i], within(MATMUL_TOLERANCE * magnitude[i] + 1e-30));
        }
    }

    @Test
    void shouldRejectFusedWeightsWithDifferentInputWidths() {
        WeightMatrix a = RandomWeights.of(GgmlType.F32, 8, 64, 39, arena);
        WeightMatrix b = RandomWeights.of(GgmlType.F32, 8, 32, 40, arena);
        assertThatThrownBy(() -> three.matmul2(a, b, new float[64], new float[8], new float[8], 1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("fused matmul needs equal cols");
    }

    @Test
    void shouldMatchGgmlRmsNormBitForBit() {
        int dim = 2048 + 7;
        int n = 3;
        float[] x = RandomWeights.floats(n * dim, 41);
        float[] weight = RandomWeights.floats(dim, 42);
        float[] expected = ScalarKernels.rmsNorm(x, weight, n, dim, 1e-5f);
        float[] out = new float[n * dim];
        three.rmsNorm(x, weight, out, n, dim, 1e-5f);
        assertThat(out).containsExactly(expected);
        three.rmsNorm(x, weight, x, n, dim, 1e-5f);
        assertThat(x).as("in place").containsExactly(expected);
    }

    @Test
    void shouldRotateAdjacentPairsInNormalStyle() {
        float[] x = {1, 2, 3, 4};
        one.rope(x, 1, 1, 4, 4, new int[] {1}, RopeStyle.NORMAL, 10000f);
        // pair 0 by 1 rad, pair 1 by 10000^(-2/4) = 0.01 rad
        assertThat(x).containsExactly(new float[] {-1.1426396f, 1.9220755f, 2.9598508f, 4.0297995f}, within(1e-6f));
    }

    @Test
    void shouldRotateSplitHalvesInNeoxStyle() {
        float[] x = {1, 2, 3, 4};
        one.rope(x, 1, 1, 4, 4, new int[] {1}, RopeStyle.NEOX, 10000f);
        // (x0, x2) by 1 rad, (x1, x3) by 0.01 rad
        assertThat(x).containsExactly(new float[] {-1.9841106f, 1.9599007f, 2.4623778f, 4.0197997f}, within(1e-6f));
    }

    @Test
    void shouldLeaveElementsBeyondTheRotaryDimensionAndPositionZeroUnchanged() {
        float[] normal = {1, 2, 3, 4};
        float[] neox = {1, 2, 3, 4};
        one.rope(normal, 1, 1, 4, 2, new int[] {1}, RopeStyle.NORMAL, 10000f);
        one.rope(neox, 1, 1, 4, 2, new int[] {1}, RopeStyle.NEOX, 10000f);
        assertThat(normal).containsExactly(new float[] {-1.1426396f, 1.9220755f, 3, 4}, within(1e-6f));
        assertThat(neox).as("rotaryDim 2 pairs x0 with x1 in NEOX too")
                .containsExactly(new float[] {-1.1426396f, 1.9220755f, 3, 4}, within(1e-6f));
        float[] atZero = {1, 2, 3, 4, 5, 6, 7, 8};
        one.rope(atZero, 2, 1, 4, 4, new int[] {0, 0}, RopeStyle.NORMAL, 500000f);
        assertThat(atZero).containsExactly(1, 2, 3, 4, 5, 6, 7, 8);
    }

    @ParameterizedTest
    @EnumSource(RopeStyle.class)
    void shouldMatchGgmlRopeAnglesBitForBitAtLongPositionsWithFrequencyFactors(RopeStyle style) {
        int numHeads = 3;
        int headDim = 64;
        int rotaryDim = 48;
        int[] positions = {0, 1, 17, 4095, 131_071};
        int n = positions.length;
        float[] x = RandomWeights.floats(n * numHeads * headDim, 43);
        float[] factors = new float[rotaryDim / 2];
        for (int i = 0; i < factors.length; i++) {
            factors[i] = 1f + i % 5;
        }
        for (float[] ff : new float[][] {null, factors}) {
            float[] expected = ScalarKernels.rope(x, n, numHeads, headDim, rotaryDim, positions, style, 500000f, ff);
            float[] got = x.clone();
            three.rope(got, n, numHeads, headDim, rotaryDim, positions, style, 500000f, ff);
            assertThat(got).as("freqFactors %s", ff == null ? "none" : "set").containsExactly(expected);
        }
    }

    @Test
    void shouldRejectAnOddRotaryDimension() {
        assertThatThrownBy(() -> one.rope(new float[8], 1, 2, 4, 3, new int[] {0}, RopeStyle.NEOX, 1e4f))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("rotaryDim must be even");
    }

    @Test
    void shouldSplitLargeElementwiseKernelsOverThreadsWithoutChangingAResult() {
        int len = 3 * CpuBackend.MIN_PARALLEL_ELEMENTS + 5;
        float[] gate = RandomWeights.floats(len, 48);
        float[] up = RandomWeights.floats(len, 49);
        float[] serialGate = gate.clone();
        one.swiglu(serialGate, up, len);
        three.swiglu(gate, up, len);
        assertThat(gate).containsExactly(serialGate);

        float[] acc = RandomWeights.floats(len, 50);
        float[] serialAcc = acc.clone();
        one.add(serialAcc, up, len);
        three.add(acc, up, len);
        assertThat(acc).containsExactly(serialAcc);

        int dim = 2048 + 7;
        int n = CpuBackend.MIN_PARALLEL_ELEMENTS / dim + 3;
        float[] x = RandomWeights.floats(n * dim, 51);
        float[] weight = RandomWeights.floats(dim, 52);
        float[] out = new float[n * dim];
        three.rmsNorm(x, weight, out, n, dim, 1e-5f);
        assertThat(out).containsExactly(ScalarKernels.rmsNorm(x, weight, n, dim, 1e-5f));
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 15, 16, 17, 100, 8192})
    void shouldMatchScalarElementwiseKernels(int len) {
        float[] gate = RandomWeights.floats(len, 44);
        float[] up = RandomWeights.floats(len, 45);
        for (int i = 0; i < len; i++) {
            gate[i] *= 12;
        }
        float[] expected = ScalarKernels.swiglu(gate, up, len);
        one.swiglu(gate, up, len);
        for (int i = 0; i < len; i++) {
            assertThat(gate[i]).as("swiglu %d", i).isCloseTo(expected[i], within(2e-6f * Math.abs(expected[i]) + 1e-7f));
        }

        float[] acc = RandomWeights.floats(len, 46);
        float[] sum = acc.clone();
        for (int i = 0; i < len; i++) {
            sum[i] += up[i];
        }
        one.add(acc, up, len);
        assertThat(acc).containsExactly(sum);

        float[] logits = RandomWeights.floats(len + 3, 47);
        for (int i = 0; i < logits.length; i++) {
            logits[i] *= 30;
        }
        float[] probs = ScalarKernels.softmax(logits, 2, len);
        one.softmax(logits, 2, len);
        for (int i = 0; i < logits.length; i++) {
            assertThat(logits[i]).as("softmax %d", i).isCloseTo(probs[i], within(2e-6f * Math.abs(probs[i]) + 1e-9f));
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 15, 16, 17, 64, 100, 129})
    void shouldMatchScalarDotAndAxpyOnArraysAndKvSegments(int len) {
        float[] a = RandomWeights.floats(len + 3, 48);
        float[] b = RandomWeights.floats(len + 5, 49);
        assertThat((double) one.dot(a, 3, b, 5, len)).isCloseTo(ScalarKernels.dot(a, 3, b, 5, len), within(1e-5 * len));

        float[] y = RandomWeights.floats(len + 2, 50);
        float[] yExpected = y.clone();
        for (int i = 0; i < len; i++) {
            yExpected[2 + i] += 0.75f * a[3 + i];
        }
        one.axpy(0.75f, a, 3, y, 2, len);
        assertThat(y).containsExactly(yExpected, within(1e-6f));

        float[] kv = RandomWeights.floats(len, 51);
        MemorySegment f32 = arena.allocate(4L * len + 12);
        MemorySegment.copy(MemorySegment.ofArray(Quantizer.quantize(GgmlType.F32, kv)), 0, f32, 12, 4L * len);
        MemorySegment f16 = arena.allocate(2L * len + 6);
        MemorySegment.copy(MemorySegment.ofArray(Quantizer.quantize(GgmlType.F16, kv)), 0, f16, 6, 2L * len);
        for (boolean half : new boolean[] {false, true}) {
            MemorySegment page = half ? f16 : f32;
            long off = half ? 6 : 12;
            float[] values = ScalarKernels.read(page, off, len, half);
            double expectedDot = ScalarKernels.dot(a, 3, values, 0, len);
            float gotDot = half ? one.dotF16(a, 3, page, off, len) : one.dot(a, 3, page, off, len);
            assertThat((double) gotDot).as("dot f16=%s", half).isCloseTo(expectedDot, within(1e-5 * len));

            float[] acc = RandomWeights.floats(len + 1, 52);
            float[] accExpected = acc.clone();
            for (int i = 0; i < len; i++) {
                accExpected[1 + i] += -1.5f * values[i];
            }
            if (half) {
                one.axpyF16(-1.5f, page, off, acc, 1, len);
            } else {
                one.axpy(-1.5f, page, off, acc, 1, len);
            }
            assertThat(acc).as("axpy f16=%s", half).containsExactly(accExpected, within(1e-6f));
        }
    }

    @Test
    void shouldWidenEveryF16BitPatternExactlyWhenAccumulatingAValueRow() {
        int len = 1 << 16;
        MemorySegment page = arena.allocate(2L * len);
        for (int h = 0; h < len; h++) {
            page.set(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, 2L * h, (short) h);
        }
        float[] y = new float[len];
        one.axpyF16(1f, page, 0, y, 0, len);
        for (int h = 0; h < len; h++) {
            float expected = Float.float16ToFloat((short) h);
            if (Float.isNaN(expected)) {
                assertThat(y[h]).as("f16 0x%04x", h).isNaN();
            } else {
                // 1 * v + 0 = v exactly; == ignores the sign of zero
                assertThat(y[h] == expected).as("f16 0x%04x: %s vs %s", h, y[h], expected).isTrue();
            }
        }
    }

    @Test
    void shouldStopItsWorkerThreadsOnCloseAndIgnoreASecondClose() {
        CpuBackend backend = new CpuBackend(3);
        assertThat(backend.threads()).isEqualTo(3);
        assertThat(backend.liveWorkers()).isEqualTo(2);
        backend.close();
        assertThat(backend.liveWorkers()).isZero();
        backend.close();
        WeightMatrix w = RandomWeights.of(GgmlType.F32, 4, 8, 53, arena);
        assertThatThrownBy(() -> backend.matmul(w, new float[8], new float[4], 1))
                .isInstanceOf(IllegalStateException.class)
                .hasMessage("CpuBackend is closed");
    }

    @Test
    void shouldUseOneThreadPerProcessorByDefault() {
        try (CpuBackend backend = new CpuBackend()) {
            assertThat(backend.threads()).isEqualTo(Runtime.getRuntime().availableProcessors());
            assertThat(backend.name()).isEqualTo("cpu");
        }
    }

    @Test
    void shouldLeaveTheMatmulOutputUntouchedBeyondItsShape() {
        WeightMatrix w = RandomWeights.of(GgmlType.Q8_0, 40, 64, 54, arena);
        float[] out = new float[2 * 40 + 3];
        Arrays.fill(out, -7f);
        three.matmul(w, RandomWeights.floats(2 * 64, 55), out, 2);
        assertThat(Arrays.copyOfRange(out, 80, 83)).containsExactly(-7f, -7f, -7f);
    }
}
