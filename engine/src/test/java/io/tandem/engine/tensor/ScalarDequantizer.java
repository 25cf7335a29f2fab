package io.tandem.engine.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Test reference: ggml's {@code dequantize_row_*} and {@code *_to_fp32} written as plainly as the
 * block layouts read, independent of the vector kernels.
 */
public final class ScalarDequantizer {
    private static final ValueLayout.OfShort SHORT_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private ScalarDequantizer() {
    }

    /** Row {@code row} of a {@code [rows, cols]} tensor of {@code type} stored at offset 0 of {@code data}. */
    public static float[] row(GgmlType type, MemorySegment data, int row, int cols) {
        long off = row * type.byteSize(cols);
        float[] out = new float[cols];
        switch (type) {
            case F32 -> {
                for (int i = 0; i < cols; i++) {
                    out[i] = data.get(FLOAT_LE, off + 4L * i);
                }
            }
            case F16 -> {
                for (int i = 0; i < cols; i++) {
                    out[i] = Float.float16ToFloat(data.get(SHORT_LE, off + 2L * i));
                }
            }
            case BF16 -> {
                for (int i = 0; i < cols; i++) {
                    out[i] = Float.intBitsToFloat((data.get(SHORT_LE, off + 2L * i) & 0xFFFF) << 16);
                }
            }
            case Q8_0 -> {
                for (int b = 0; b < cols / 32; b++) {
                    long block = off + 34L * b;
                    float d = Float.float16ToFloat(data.get(SHORT_LE, block));
                    for (int j = 0; j < 32; j++) {
                        out[b * 32 + j] = data.get(ValueLayout.JAVA_BYTE, block + 2 + j) * d;
                    }
                }
            }
            case Q4_0 -> {
                for (int b = 0; b < cols / 32; b++) {
                    long block = off + 18L * b;
                    float d = Float.float16ToFloat(data.get(SHORT_LE, block));
                    for (int j = 0; j < 16; j++) {
                        int q = data.get(ValueLayout.JAVA_BYTE, block + 2 + j) & 0xFF;
                        out[b * 32 + j] = ((q & 0x0F) - 8) * d;
                        out[b * 32 + 16 + j] = ((q >> 4) - 8) * d;
                    }
                }
            }
        }
        return out;
    }
}
