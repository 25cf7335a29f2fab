package io.tandem.engine.tensor;

import static org.assertj.core.api.Assertions.assertThat;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorSpecies;
import org.junit.jupiter.api.Test;

/** Both f16 conversions against {@link Float#float16ToFloat} for all 65536 bit patterns. */
class HalfFloatTest {

    @Test
    void shouldConvertEveryF16BitPatternThroughTheTable() {
        for (int h = 0; h < 1 << 16; h++) {
            float expected = Float.float16ToFloat((short) h);
            assertThat(Float.floatToRawIntBits(HalfFloat.toFloat((short) h)))
                    .as("f16 0x%04x", h).isEqualTo(Float.floatToRawIntBits(expected));
        }
    }

    @Test
    void shouldConvertEveryF16BitPatternLaneWiseIncludingSubnormalsInfinitiesAndNaNs() {
        VectorSpecies<Integer> ints = IntVector.SPECIES_PREFERRED;
        int lanes = ints.length();
        int[] bits = new int[lanes];
        float[] got = new float[lanes];
        for (int h = 0; h < 1 << 16; h += lanes) {
            for (int l = 0; l < lanes; l++) {
                bits[l] = (short) (h + l);
            }
            FloatVector f = HalfFloat.toFloats(IntVector.fromArray(ints, bits, 0));
            f.intoArray(got, 0);
            for (int l = 0; l < lanes; l++) {
                float expected = Float.float16ToFloat((short) (h + l));
                assertThat(Float.floatToRawIntBits(got[l])).as("f16 0x%04x", h + l)
                        .isEqualTo(Float.floatToRawIntBits(expected));
            }
        }
    }
}
