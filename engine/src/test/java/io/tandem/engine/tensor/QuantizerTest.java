package io.tandem.engine.tensor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Hand-computed blocks of ggml's reference quantizers ({@code quantize_row_q8_0_ref}, ...). */
class QuantizerTest {

    @Test
    void shouldQuantizeQ8_0WithAmaxScaleAndRoundTiesAwayFromZero() {
        float[] x = new float[32];
        x[0] = 127f;
        x[1] = -63.5f;
        x[2] = 0.5f;
        x[3] = -0.5f;
        x[4] = 2.5f;
        x[5] = -2.5f;
        x[6] = 1.49f;
        x[7] = -126.6f;
        byte[] q = Quantizer.quantize(GgmlType.Q8_0, x);
        // d = 127 / 127 = 1.0 -> f16 0x3C00, little-endian
        assertThat(q).hasSize(34);
        assertThat(Arrays.copyOfRange(q, 0, 2)).containsExactly(0x00, 0x3C);
        assertThat(Arrays.copyOfRange(q, 2, 10)).containsExactly(127, -64, 1, -1, 3, -3, 1, -127);
        assertThat(Arrays.copyOfRange(q, 10, 34)).containsOnly(0);
    }

    @Test
    void shouldStoreTheQ8_0ScaleAsF16ButQuantizeWithTheFloatScale() {
        float[] x = new float[32];
        x[0] = -1f;
        x[1] = 0.25f;
        byte[] q = Quantizer.quantize(GgmlType.Q8_0, x);
        // d = 1/127 = 0.0078740157 -> f16 2^-7 * (1 + 8/1024) = 0x2008
        assertThat(Arrays.copyOfRange(q, 0, 2)).containsExactly(0x08, 0x20);
        // 0.25 * 127 = 31.75 -> 32
        assertThat(Arrays.copyOfRange(q, 2, 4)).containsExactly(-127, 32);
    }

    @Test
    void shouldQuantizeAnAllZeroQ8_0BlockToZeroScaleAndQuants() {
        assertThat(Quantizer.quantize(GgmlType.Q8_0, new float[32])).containsOnly(0);
    }

    @Test
    void shouldQuantizeQ4_0WithTheSignedMaximumAndPackNibblesLowThenHigh() {
        float[] x = new float[32];
        x[0] = 7f;
        x[1] = 7.6f;
        x[2] = -0.5f;
        x[3] = -8f;
        x[4] = 0.5f;
        x[16] = -3.2f;
        x[17] = 2f;
        byte[] q = Quantizer.quantize(GgmlType.Q4_0, x);
        // max = -8 -> d = -8 / -8 = 1.0 (0x3C00), id = 1, q = min(15, (int)(x + 8.5))
        assertThat(q).hasSize(18);
        assertThat(Arrays.copyOfRange(q, 0, 2)).containsExactly(0x00, 0x3C);
        int[] lo = {15, 15, 8, 0, 9};
        int[] hi = {5, 10, 8, 8, 8};
        for (int j = 0; j < 5; j++) {
            assertThat(q[2 + j] & 0xFF).as("byte %d", j).isEqualTo(lo[j] | hi[j] << 4);
        }
        for (int j = 5; j < 16; j++) {
            assertThat(q[2 + j] & 0xFF).as("byte %d", j).isEqualTo(0x88);
        }
    }

    @Test
    void shouldKeepTheFirstOfTwoEqualMagnitudesAsTheQ4_0Maximum() {
        float[] x = new float[32];
        x[0] = 3f;
        x[1] = -3f;
        x[2] = 1f;
        byte[] q = Quantizer.quantize(GgmlType.Q4_0, x);
        // max = +3 (first), d = 3 / -8 = -0.375 -> f16 0xB600; id = -8/3
        assertThat(Arrays.copyOfRange(q, 0, 2)).containsExactly(0x00, 0xB6);
        // 3 -> (int)(-8.0000001 + 8.5) = 0; -3 -> min(15, 16) = 15; 1 -> (int)(5.8333) = 5
        assertThat(q[2] & 0x0F).isEqualTo(0);
        assertThat(q[3] & 0x0F).isEqualTo(15);
        assertThat(q[4] & 0x0F).isEqualTo(5);
    }

    @Test
    void shouldQuantizeAnAllZeroQ4_0BlockToNegativeZeroScaleAndMidpointNibbles() {
        byte[] q = Quantizer.quantize(GgmlType.Q4_0, new float[32]);
        // max = 0 -> d = 0 / -8 = -0.0 (f16 0x8000), id = 0, q = (int) 8.5 = 8
        assertThat(Arrays.copyOfRange(q, 0, 2)).containsExactly(0x00, 0x80);
        assertThat(Arrays.copyOfRange(q, 2, 18)).containsOnly((byte) 0x88);
    }

    @Test
    void shouldRoundF16ToNearestEven() {
        float tieDown = 1f + 0x1p-11f;
        float tieUp = 1f + 3 * 0x1p-11f;
        byte[] q = Quantizer.quantize(GgmlType.F16, new float[] {tieDown, tieUp, -2f});
        assertThat(q).containsExactly(0x00, 0x3C, 0x02, 0x3C, 0x00, 0xC0);
    }

    @Test
    void shouldRoundBf16ToNearestEvenAsGgml() {
        assertThat(Quantizer.toBf16(Float.intBitsToFloat(0x3F80_8000))).isEqualTo((short) 0x3F80);
        assertThat(Quantizer.toBf16(Float.intBitsToFloat(0x3F81_8000))).isEqualTo((short) 0x3F82);
        assertThat(Quantizer.toBf16(Float.intBitsToFloat(0x3F80_8001))).isEqualTo((short) 0x3F81);
        assertThat(Quantizer.toBf16(Float.MAX_VALUE)).isEqualTo((short) 0x7F80);
        assertThat(Quantizer.toBf16(Float.intBitsToFloat(0x0001_8000))).as("subnormal kept").isEqualTo((short) 0x0002);
        assertThat(Quantizer.toBf16(Float.intBitsToFloat(0x7F80_0001))).as("NaN made quiet").isEqualTo((short) 0x7FC0);
        assertThat(Quantizer.toBf16(-1.5f)).isEqualTo((short) 0xBFC0);
    }

    @Test
    void shouldRoundLikeCRoundfNotLikeMathRound() {
        assertThat(Quantizer.roundHalfAwayFromZero(-0.5f)).isEqualTo(-1f);
        assertThat(Quantizer.roundHalfAwayFromZero(0.49999997f)).isEqualTo(0f);
        assertThat(Quantizer.roundHalfAwayFromZero(-2.5f)).isEqualTo(-3f);
        assertThat(Quantizer.roundHalfAwayFromZero(126.4f)).isEqualTo(126f);
    }

    @ParameterizedTest
    @EnumSource(GgmlType.class)
    void shouldRoundTripThroughWeightMatrixWithinTheTypesResolution(GgmlType type) {
        int rows = 3;
        int cols = 64;
        float[] src = RandomWeights.floats(rows * cols, 21);
        MemorySegment data = MemorySegment.ofArray(Quantizer.quantize(type, src));
        WeightMatrix w = WeightMatrix.of(type, data, rows, cols);
        float[] back = new float[cols];
        for (int r = 0; r < rows; r++) {
            w.dequantizeRow(r, back, 0);
            for (int b = 0; b < cols / 32; b++) {
                float amax = 0f;
                for (int j = 0; j < 32; j++) {
                    amax = Math.max(amax, Math.abs(src[r * cols + b * 32 + j]));
                }
                float step = switch (type) {
                    case F32 -> 0f;
                    case F16 -> amax * 0x1p-11f;
                    case BF16 -> amax * 0x1p-8f;
                    // |x*id - q| <= 1/2 step, plus the f16 rounding of d times |q| <= 127
                    case Q8_0 -> amax / 127f * 0.57f;
                    // a value of sign opposite to max clamps from 16 to 15: one full step
                    case Q4_0 -> amax / 8f * 1.01f;
                };
                for (int j = 0; j < 32; j++) {
                    int i = b * 32 + j;
                    assertThat(back[i]).as("%s row %d col %d", type, r, i)
                            .isCloseTo(src[r * cols + i], org.assertj.core.data.Offset.offset(step + 1e-7f));
                }
            }
        }
    }

    @Test
    void shouldRejectACountThatIsNotAWholeNumberOfBlocks() {
        assertThatThrownBy(() -> Quantizer.quantize(GgmlType.Q8_0, new float[40]))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("multiple of 32");
    }
}
