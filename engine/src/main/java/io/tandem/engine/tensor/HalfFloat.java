package io.tandem.engine.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;

/**
 * IEEE 754 binary16 ("f16", {@code ggml_fp16_t}) to float conversion for kernels.
 *
 * <p>Two forms, both exact (every f16 value is a float):
 * <ul>
 *   <li>{@link #toFloat(short)}: a 256 KiB lookup table, as ggml's {@code ggml_table_f32_f16}.
 *       A quantized block's scale is converted this way: on x86 the table load folds into the
 *       {@code vbroadcastss} the kernel needs anyway, which is cheaper than {@code vcvtph2ps}
 *       plus a broadcast.</li>
 *   <li>{@link #toFloats(IntVector)}: a lane-wise bit conversion (the Vector API of JDK 25 has no
 *       f16 lane type). This is the reference form, tested on all 65536 inputs; the F16 weight
 *       and KV kernels write the same steps out inline, because C2 boxes a vector passed
 *       through a call it does not inline.</li>
 * </ul>
 */
public final class HalfFloat {
    /**
     * {@code TABLE[bits & 0xFFFF]} is the float value of the f16 with those bits. Kernels index it
     * directly rather than calling {@link #toFloat}: inside a large vector kernel C2 may already
     * have hit its inlining budget, and an out-of-line call there spills every vector register.
     */
    static final float[] TABLE = new float[1 << 16];

    static {
        for (int i = 0; i < TABLE.length; i++) {
            TABLE[i] = Float.float16ToFloat((short) i);
        }
    }

    /** 2^112: rescales an f16 exponent (bias 15) placed in a float (bias 127). */
    private static final float EXPONENT_REBIAS = 0x1p112f;
    private static final int F16_MAGNITUDE_MASK = 0x7FFF;
    private static final int F16_INF_BITS = 0x7C00;
    private static final int F32_EXPONENT_MASK = 0x7F80_0000;
    private static final int F32_SIGN_MASK = 0x8000_0000;
    private static final int F32_QUIET_NAN_BIT = 0x0040_0000;

    private HalfFloat() {
    }

    /** The float value of the f16 {@code bits}, exactly as {@link Float#float16ToFloat}. */
    public static float toFloat(short bits) {
        return TABLE[bits & 0xFFFF];
    }

    /**
     * Converts lanes holding f16 bit patterns, sign-extended to 32 bits (as
     * {@code ShortVector.convertShape(S2I, ...)} yields), to floats. Exact for every value:
     * normals and subnormals through one multiply by 2^112, infinities and NaNs through a blend;
     * NaNs come out quiet with their payload, as {@link Float#float16ToFloat} ({@code vcvtph2ps}).
     */
    public static FloatVector toFloats(IntVector halfBits) {
        IntVector magnitude = halfBits.and(F16_MAGNITUDE_MASK);
        IntVector shifted = magnitude.lanewise(VectorOperators.LSHL, 13);
        FloatVector finite = shifted.reinterpretAsFloats().mul(EXPONENT_REBIAS);
        VectorMask<Integer> special = magnitude.compare(VectorOperators.GE, F16_INF_BITS);
        VectorMask<Integer> nan = magnitude.compare(VectorOperators.GT, F16_INF_BITS);
        IntVector infOrNan = shifted.or(F32_EXPONENT_MASK).lanewise(VectorOperators.OR, F32_QUIET_NAN_BIT, nan);
        IntVector bits = finite.reinterpretAsInts().blend(infOrNan, special);
        return bits.or(halfBits.and(F32_SIGN_MASK)).reinterpretAsFloats();
    }
}
