package io.tandem.engine.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Objects;

/**
 * Float to GGML bytes, bit-identical to ggml's reference quantizers so that a model Tandem
 * writes (e.g. {@code --load-format dummy} exported as GGUF) reads the same in llama.cpp.
 *
 * <ul>
 *   <li>Q8_0, {@code quantize_row_q8_0_ref}: {@code amax = max|x|}, {@code d = amax / 127},
 *       {@code id = d != 0 ? 1/d : 0}, {@code q = roundf(x * id)} (ties away from zero), scale
 *       stored as f16.</li>
 *   <li>Q4_0, {@code quantize_row_q4_0_ref}: {@code max} = the element of largest magnitude with
 *       its sign (first one on ties), {@code d = max / -8}, {@code id = d != 0 ? 1/d : 0},
 *       {@code q = min(15, (int)(x * id + 8.5f))}; element {@code j} in the low nibble of byte
 *       {@code j}, element {@code j + 16} in the high nibble.</li>
 *   <li>F16: {@link Float#floatToFloat16} (round to nearest even, as {@code _cvtss_sh(x, 0)}).</li>
 *   <li>BF16, {@code ggml_compute_fp32_to_bf16}: round to nearest even on the upper 16 bits,
 *       NaN made quiet, subnormals kept.</li>
 * </ul>
 * All writes are little-endian; the methods write exactly {@code type.byteSize(count)} bytes at
 * {@code dst} offset {@code dstOffset}.
 */
public final class Quantizer {
    private static final int QK = 32;
    private static final ValueLayout.OfShort SHORT_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private Quantizer() {
    }

    /**
     * Encodes {@code src[srcOffset, srcOffset + count)} as {@code type} into {@code dst} at
     * {@code dstOffset}.
     *
     * @throws IllegalArgumentException if {@code count} is not a multiple of the block size
     * @throws IndexOutOfBoundsException if {@code src} or {@code dst} is too short
     */
    public static void quantize(GgmlType type, float[] src, int srcOffset, int count,
                                MemorySegment dst, long dstOffset) {
        long bytes = type.byteSize(count);
        Objects.checkFromIndexSize(srcOffset, count, src.length);
        Objects.checkFromIndexSize(dstOffset, bytes, dst.byteSize());
        switch (type) {
            case F32 -> MemorySegment.copy(src, srcOffset, dst, FLOAT_LE, dstOffset, count);
            case F16 -> {
                for (int i = 0; i < count; i++) {
                    dst.set(SHORT_LE, dstOffset + 2L * i, Float.floatToFloat16(src[srcOffset + i]));
                }
            }
            case BF16 -> {
                for (int i = 0; i < count; i++) {
                    dst.set(SHORT_LE, dstOffset + 2L * i, toBf16(src[srcOffset + i]));
                }
            }
            case Q8_0 -> {
                for (int b = 0; b < count / QK; b++) {
                    quantizeBlockQ8_0(src, srcOffset + b * QK, dst, dstOffset + (long) b * type.typeSize());
                }
            }
            case Q4_0 -> {
                for (int b = 0; b < count / QK; b++) {
                    quantizeBlockQ4_0(src, srcOffset + b * QK, dst, dstOffset + (long) b * type.typeSize());
                }
            }
        }
    }

    /** {@code src} encoded as {@code type} in a new little-endian byte array. */
    public static byte[] quantize(GgmlType type, float[] src) {
        byte[] out = new byte[Math.toIntExact(type.byteSize(src.length))];
        quantize(type, src, 0, src.length, MemorySegment.ofArray(out), 0);
        return out;
    }

    /** BF16 bits of {@code f} as {@code ggml_compute_fp32_to_bf16}. */
    public static short toBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if ((bits & 0x7FFF_FFFF) > 0x7F80_0000) {
            return (short) ((bits >>> 16) | 64);
        }
        return (short) ((bits + (0x7FFF + ((bits >>> 16) & 1))) >>> 16);
    }

    /** C {@code roundf}: nearest integer, halfway cases away from zero (unlike {@link Math#round}). */
    static float roundHalfAwayFromZero(float v) {
        float a = Math.abs(v);
        float floor = (float) Math.floor(a);
        float r = a - floor >= 0.5f ? floor + 1f : floor;
        return Math.copySign(r, v);
    }

    private static void quantizeBlockQ8_0(float[] x, int xo, MemorySegment dst, long off) {
        float amax = 0f;
        for (int j = 0; j < QK; j++) {
            amax = Math.max(amax, Math.abs(x[xo + j]));
        }
        float d = amax / 127f;
        float id = d != 0f ? 1f / d : 0f;
        dst.set(SHORT_LE, off, Float.floatToFloat16(d));
        for (int j = 0; j < QK; j++) {
            dst.set(ValueLayout.JAVA_BYTE, off + 2 + j, (byte) (int) roundHalfAwayFromZero(x[xo + j] * id));
        }
    }

    private static void quantizeBlockQ4_0(float[] x, int xo, MemorySegment dst, long off) {
        float amax = 0f;
        float max = 0f;
        for (int j = 0; j < QK; j++) {
            float v = x[xo + j];
            if (amax < Math.abs(v)) {
                amax = Math.abs(v);
                max = v;
            }
        }
        float d = max / -8f;
        float id = d != 0f ? 1f / d : 0f;
        dst.set(SHORT_LE, off, Float.floatToFloat16(d));
        for (int j = 0; j < QK / 2; j++) {
            int lo = Math.min(15, (int) (x[xo + j] * id + 8.5f));
            int hi = Math.min(15, (int) (x[xo + QK / 2 + j] * id + 8.5f));
            dst.set(ValueLayout.JAVA_BYTE, off + 2 + j, (byte) (lo | (hi << 4)));
        }
    }
}
