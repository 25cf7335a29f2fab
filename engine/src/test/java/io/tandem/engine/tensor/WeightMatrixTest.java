package io.tandem.engine.tensor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every weight type's kernels against {@link ScalarDequantizer}: dequantization bit-exact, dot
 * products within {@link #TOLERANCE} of the exact sum relative to {@code sum |w_i * x_i|} (the
 * vector kernels only reorder float additions).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class WeightMatrixTest {
    static final double TOLERANCE = 1e-5;

    private Arena arena;

    @BeforeAll
    void openArena() {
        arena = Arena.ofShared();
    }

    @AfterAll
    void closeArena() {
        arena.close();
    }

    static Stream<Arguments> shapes() {
        List<Arguments> out = new ArrayList<>();
        int[][] blockShapes = {{1, 32}, {5, 64}, {13, 96}, {9, 160}, {37, 1024}};
        int[][] floatOnlyShapes = {{7, 35}, {3, 17}, {6, 1}};
        for (GgmlType type : GgmlType.values()) {
            for (int[] s : blockShapes) {
                out.add(Arguments.of(type, s[0], s[1]));
            }
            if (type.blockSize() == 1) {
                for (int[] s : floatOnlyShapes) {
                    out.add(Arguments.of(type, s[0], s[1]));
                }
            }
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0} [{1}, {2}]")
    @MethodSource("shapes")
    void shouldDequantizeEveryRowBitExactlyAsGgml(GgmlType type, int rows, int cols) {
        WeightMatrix w = RandomWeights.of(type, rows, cols, 11, arena);
        float[] out = new float[cols + 3];
        for (int r = 0; r < rows; r++) {
            w.dequantizeRow(r, out, 3);
            float[] expected = ScalarDequantizer.row(type, w.data(), r, cols);
            assertThat(Arrays.copyOfRange(out, 3, cols + 3)).as("row %d", r).containsExactly(expected);
        }
    }

    @ParameterizedTest(name = "{0} [{1}, {2}]")
    @MethodSource("shapes")
    void shouldComputeRowDotWithinRoundingOfExactSum(GgmlType type, int rows, int cols) {
        WeightMatrix w = RandomWeights.of(type, rows, cols, 12, arena);
        float[] x = RandomWeights.floats(cols + 5, 13);
        for (int r = 0; r < rows; r++) {
            float[] row = ScalarDequantizer.row(type, w.data(), r, cols);
            assertClose(w.dot(r, x, 5), row, x, 5, "row " + r);
        }
    }

    @ParameterizedTest(name = "{0} [{1}, {2}]")
    @MethodSource("shapes")
    void shouldMatchScalarMatmulForOneFewAndManyTokensWithinTheRowRange(GgmlType type, int rows, int cols) {
        WeightMatrix w = RandomWeights.of(type, rows, cols, 14, arena);
        for (int n : new int[] {1, 3, 17, 40}) {
            float[] x = RandomWeights.floats(n * cols, 15 + n);
            int[][] ranges = rows > 2 ? new int[][] {{0, rows}, {1, rows - 1}} : new int[][] {{0, rows}};
            for (int[] range : ranges) {
                float[] out = new float[n * rows];
                Arrays.fill(out, Float.NaN);
                w.matmulRows(x, n, out, range[0], range[1]);
                for (int t = 0; t < n; t++) {
                    for (int r = 0; r < rows; r++) {
                        float got = out[t * rows + r];
                        if (r < range[0] || r >= range[1]) {
                            assertThat(got).as("untouched out[%d, %d]", t, r).isNaN();
                        } else {
                            float[] row = ScalarDequantizer.row(type, w.data(), r, cols);
                            assertClose(got, row, x, t * cols, "n=" + n + " t=" + t + " r=" + r);
                        }
                    }
                }
            }
        }
    }

    static Stream<Arguments> typesAndPackedBatches() {
        // 33 and 64 tokens: one and two token groups, whose weights stream row tile by row tile
        // (F32 straight from its memory); 70: three groups, blocked over rows and columns
        return Arrays.stream(GgmlType.values())
                .flatMap(type -> Stream.of(33, 64, 70).map(n -> Arguments.of(type, n)));
    }

    @ParameterizedTest(name = "{0} x {1} tokens")
    @MethodSource("typesAndPackedBatches")
    void shouldComputeEveryPrefillOutputAsOneFmaChainOverTheColumnsInOrder(GgmlType type, int n) {
        // 101 rows: a 96-row block of 12-row tiles, then a 4-row and a 1-row tile; 320 columns:
        // two full column passes and a half one; the last token group padded unless n = 64
        int rows = 101;
        int cols = 320;
        WeightMatrix w = RandomWeights.of(type, rows, cols, 18, arena);
        float[] x = RandomWeights.floats(n * cols, 19);
        PackedActivations packed = new PackedActivations();
        packed.pack(x, n, cols);
        float[] viaPacked = new float[n * rows];
        w.matmulRows(packed, viaPacked, 0, rows);
        float[] viaArray = new float[n * rows];
        w.matmulRows(x, n, viaArray, 0, rows);
        float[] expected = new float[n * rows];
        for (int r = 0; r < rows; r++) {
            float[] row = ScalarDequantizer.row(type, w.data(), r, cols);
            for (int t = 0; t < n; t++) {
                float s = 0f;
                for (int k = 0; k < cols; k++) {
                    s = Math.fma(row[k], x[t * cols + k], s);
                }
                expected[t * rows + r] = s;
            }
        }
        assertThat(viaPacked).containsExactly(expected);
        assertThat(viaArray).containsExactly(expected);
    }

    @ParameterizedTest
    @EnumSource(GgmlType.class)
    void shouldGiveASmallBatchTokenTheSameResultWhateverTheBatchSize(GgmlType type) {
        // 13 rows: three 4-row tiles and a leftover row; batches of 2..9 tokens put a token in a
        // full 4x4 tile or among the leftover tokens depending on the batch size
        int rows = 13;
        int cols = 96;
        int maxN = Math.min(9, PackedActivations.MIN_TOKENS - 1);
        WeightMatrix w = RandomWeights.of(type, rows, cols, 21, arena);
        float[] x = RandomWeights.floats(maxN * cols, 22);
        float[] reference = new float[maxN * rows];
        w.matmulRows(x, maxN, reference, 0, rows);
        for (int n = 2; n < maxN; n++) {
            float[] out = new float[n * rows];
            w.matmulRows(x, n, out, 0, rows);
            assertThat(out).as("n=%d", n).containsExactly(Arrays.copyOf(reference, n * rows));
        }
    }

    @Test
    void shouldRejectActivationsPackedForOtherColumns() {
        WeightMatrix w = RandomWeights.of(GgmlType.Q8_0, 4, 64, 20, arena);
        PackedActivations packed = new PackedActivations();
        packed.pack(new float[40 * 32], 40, 32);
        assertThatThrownBy(() -> w.matmulRows(packed, new float[40 * 4], 0, 4))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("cols 32");
    }

    @ParameterizedTest
    @EnumSource(GgmlType.class)
    void shouldReadAnUnalignedReadOnlySliceLikeAnAlignedSegment(GgmlType type) {
        int rows = 6;
        int cols = 64;
        WeightMatrix aligned = RandomWeights.of(type, rows, cols, 16, arena);
        long bytes = aligned.data().byteSize();
        MemorySegment file = arena.allocate(bytes + 3, 64);
        MemorySegment.copy(aligned.data(), 0, file, 3, bytes);
        WeightMatrix sliced = WeightMatrix.of(type, file.asSlice(3, bytes).asReadOnly(), rows, cols);
        float[] x = RandomWeights.floats(2 * cols, 17);
        float[] expected = new float[2 * rows];
        float[] got = new float[2 * rows];
        aligned.matmulRows(x, 2, expected, 0, rows);
        sliced.matmulRows(x, 2, got, 0, rows);
        assertThat(got).containsExactly(expected);
        assertThat(sliced.type()).isEqualTo(type);
        assertThat(sliced.rows()).isEqualTo(rows);
        assertThat(sliced.cols()).isEqualTo(cols);
    }

    @Test
    void shouldWidenEveryFiniteF16BitPatternExactlyInTheDotKernel() {
        int cols = 16;
        int rows = (1 << 16) / cols;
        MemorySegment data = arena.allocate(2L * rows * cols);
        for (int h = 0; h < 1 << 16; h++) {
            boolean finite = (h & 0x7C00) != 0x7C00;
            data.set(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, 2L * h, finite ? (short) h : 0);
        }
        WeightMatrix w = WeightMatrix.of(GgmlType.F16, data, rows, cols);
        float[] oneHot = new float[cols];
        for (int c = 0; c < cols; c++) {
            Arrays.fill(oneHot, 0f);
            oneHot[c] = 1f;
            for (int r = 0; r < rows; r++) {
                int h = r * cols + c;
                float expected = (h & 0x7C00) == 0x7C00 ? 0f : Float.float16ToFloat((short) h);
                // w . e_c = w[c] exactly (the other products are zeros); == ignores the sign of zero
                assertThat(w.dot(r, oneHot, 0) == expected).as("f16 0x%04x", h).isTrue();
            }
        }
    }

    @Test
    void shouldRejectASegmentOfTheWrongSizeNamingTheMismatch() {
        MemorySegment data = arena.allocate(34 * 4);
        assertThatThrownBy(() -> WeightMatrix.of(GgmlType.Q8_0, data, 2, 96))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("Q8_0 weight [2, 96] needs 204 bytes, segment has 136");
    }

    @Test
    void shouldRejectColumnsThatAreNotAMultipleOfTheBlockSize() {
        MemorySegment data = arena.allocate(18 * 4);
        assertThatThrownBy(() -> WeightMatrix.of(GgmlType.Q4_0, data, 2, 48))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("cols must be a multiple of the block size 32");
    }

    @Test
    void shouldRejectANonPositiveShape() {
        MemorySegment data = arena.allocate(0);
        assertThatThrownBy(() -> WeightMatrix.of(GgmlType.F32, data, 0, 4))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("weight shape must be positive, got [0, 4]");
    }

    @Test
    void shouldRejectARowRangeOutsideTheMatrix() {
        WeightMatrix w = RandomWeights.of(GgmlType.F32, 4, 8, 18, arena);
        float[] x = new float[8];
        float[] out = new float[4];
        assertThatThrownBy(() -> w.matmulRows(x, 1, out, 2, 5)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> w.dot(4, x, 0)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> w.matmulRows(new float[7], 1, out, 0, 4))
                .isInstanceOf(IndexOutOfBoundsException.class);
    }

    /** {@code got} equals {@code sum_i row[i] * x[xOff + i]} within TOLERANCE of {@code sum |row[i] * x[xOff + i]|}. */
    static void assertClose(float got, float[] row, float[] x, int xOff, String what) {
        double exact = 0;
        double magnitude = 0;
        for (int i = 0; i < row.length; i++) {
            double p = (double) row[i] * x[xOff + i];
            exact += p;
            magnitude += Math.abs(p);
        }
        assertThat((double) got).as(what).isCloseTo(exact, org.assertj.core.data.Offset.offset(TOLERANCE * magnitude + 1e-30));
    }
}
