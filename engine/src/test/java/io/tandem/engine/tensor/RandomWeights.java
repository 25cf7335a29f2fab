package io.tandem.engine.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

/** Test data: valid random weight bytes of any type, written directly (not through the Quantizer). */
public final class RandomWeights {
    private static final ValueLayout.OfShort SHORT_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private RandomWeights() {
    }

    /** A {@code [rows, cols]} weight of {@code type} with random contents in {@code arena}. */
    public static WeightMatrix of(GgmlType type, int rows, int cols, long seed, Arena arena) {
        long bytes = type.byteSize((long) rows * cols);
        MemorySegment data = arena.allocate(bytes, 64);
        fill(type, data, seed);
        return WeightMatrix.of(type, data, rows, cols);
    }

    /** Fills {@code data} with random values of {@code type}: finite floats in [-1, 1], random quants and scales. */
    public static void fill(GgmlType type, MemorySegment data, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        long bytes = data.byteSize();
        switch (type) {
            case F32 -> {
                for (long o = 0; o < bytes; o += 4) {
                    data.set(FLOAT_LE, o, (float) rnd.nextDouble(-1, 1));
                }
            }
            case F16 -> {
                for (long o = 0; o < bytes; o += 2) {
                    data.set(SHORT_LE, o, Float.floatToFloat16((float) rnd.nextDouble(-1, 1)));
                }
            }
            case BF16 -> {
                for (long o = 0; o < bytes; o += 2) {
                    data.set(SHORT_LE, o, (short) (Float.floatToIntBits((float) rnd.nextDouble(-1, 1)) >>> 16));
                }
            }
            case Q8_0, Q4_0 -> {
                for (long o = 0; o < bytes; o++) {
                    data.set(ValueLayout.JAVA_BYTE, o, (byte) rnd.nextInt());
                }
                for (long o = 0; o < bytes; o += type.typeSize()) {
                    data.set(SHORT_LE, o, Float.floatToFloat16((float) rnd.nextDouble(-0.05, 0.05)));
                }
            }
        }
    }

    /** {@code len} random floats in [-1, 1]. */
    public static float[] floats(int len, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        float[] x = new float[len];
        for (int i = 0; i < len; i++) {
            x[i] = (float) rnd.nextDouble(-1, 1);
        }
        return x;
    }
}
