package io.tandem.engine.backend;

import io.tandem.engine.tensor.HalfFloat;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * Attention's reads of K and V rows from off-heap KV pages: dot products against a query and
 * weighted accumulation into an output row, for little-endian f32 and f16 pages. The f16 lanes
 * are widened with the bit conversion of {@link HalfFloat#toFloats} written out inline (no
 * vector crosses a call C2 might not inline).
 */
final class KvVectorMath {
    private static final VectorSpecies<Float> F = VectorMath.F;
    private static final int LANES = F.length();
    private static final VectorSpecies<Short> S =
            VectorSpecies.of(short.class, VectorShape.forBitSize(Math.max(64, LANES * 16)));
    private static final VectorSpecies<Integer> I =
            VectorSpecies.of(int.class, VectorShape.forBitSize(F.vectorBitSize()));
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfFloat FLOAT_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LE);
    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);
    private static final float EXPONENT_REBIAS = 0x1p112f;

    private KvVectorMath() {
    }

    static float dotF32(float[] q, int qOff, MemorySegment k, long kOff, int len) {
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        int i = 0;
        for (int pairs = len - len % (2 * LANES); i < pairs; i += 2 * LANES) {
            acc0 = FloatVector.fromMemorySegment(F, k, kOff + 4L * i, LE)
                    .fma(FloatVector.fromArray(F, q, qOff + i), acc0);
            acc1 = FloatVector.fromMemorySegment(F, k, kOff + 4L * (i + LANES), LE)
                    .fma(FloatVector.fromArray(F, q, qOff + i + LANES), acc1);
        }
        for (int bound = F.loopBound(len); i < bound; i += LANES) {
            acc0 = FloatVector.fromMemorySegment(F, k, kOff + 4L * i, LE)
                    .fma(FloatVector.fromArray(F, q, qOff + i), acc0);
        }
        float s = acc0.add(acc1).reduceLanes(VectorOperators.ADD);
        for (; i < len; i++) {
            s += q[qOff + i] * k.get(FLOAT_LE, kOff + 4L * i);
        }
        return s;
    }

    static void axpyF32(float a, MemorySegment v, long vOff, float[] y, int yOff, int len) {
        FloatVector av = FloatVector.broadcast(F, a);
        int i = 0;
        for (int bound = F.loopBound(len); i < bound; i += LANES) {
            FloatVector.fromMemorySegment(F, v, vOff + 4L * i, LE).fma(av, FloatVector.fromArray(F, y, yOff + i))
                    .intoArray(y, yOff + i);
        }
        for (; i < len; i++) {
            y[yOff + i] += a * v.get(FLOAT_LE, vOff + 4L * i);
        }
    }

    static float dotF16(float[] q, int qOff, MemorySegment k, long kOff, int len) {
        FloatVector acc = FloatVector.zero(F);
        int i = 0;
        if (LANES >= 8) {
            for (int bound = F.loopBound(len); i < bound; i += LANES) {
                IntVector h = (IntVector) ShortVector.fromMemorySegment(S, k, kOff + 2L * i, LE)
                        .convertShape(VectorOperators.S2I, I, 0);
                IntVector magnitude = h.and(0x7FFF);
                IntVector shifted = magnitude.lanewise(VectorOperators.LSHL, 13);
                IntVector bits = shifted.reinterpretAsFloats().mul(EXPONENT_REBIAS).reinterpretAsInts()
                        .blend(shifted.or(0x7F80_0000).lanewise(VectorOperators.OR, 0x0040_0000,
                                magnitude.compare(VectorOperators.GT, 0x7C00)),
                                magnitude.compare(VectorOperators.GE, 0x7C00));
                acc = bits.or(h.and(0x8000_0000)).reinterpretAsFloats()
                        .fma(FloatVector.fromArray(F, q, qOff + i), acc);
            }
        }
        float s = acc.reduceLanes(VectorOperators.ADD);
        for (; i < len; i++) {
            s += q[qOff + i] * HalfFloat.toFloat(k.get(SHORT_LE, kOff + 2L * i));
        }
        return s;
    }

    static void axpyF16(float a, MemorySegment v, long vOff, float[] y, int yOff, int len) {
        FloatVector av = FloatVector.broadcast(F, a);
        int i = 0;
        if (LANES >= 8) {
            for (int bound = F.loopBound(len); i < bound; i += LANES) {
                IntVector h = (IntVector) ShortVector.fromMemorySegment(S, v, vOff + 2L * i, LE)
                        .convertShape(VectorOperators.S2I, I, 0);
                IntVector magnitude = h.and(0x7FFF);
                IntVector shifted = magnitude.lanewise(VectorOperators.LSHL, 13);
                IntVector bits = shifted.reinterpretAsFloats().mul(EXPONENT_REBIAS).reinterpretAsInts()
                        .blend(shifted.or(0x7F80_0000).lanewise(VectorOperators.OR, 0x0040_0000,
                                magnitude.compare(VectorOperators.GT, 0x7C00)),
                                magnitude.compare(VectorOperators.GE, 0x7C00));
                bits.or(h.and(0x8000_0000)).reinterpretAsFloats()
                        .fma(av, FloatVector.fromArray(F, y, yOff + i)).intoArray(y, yOff + i);
            }
        }
        for (; i < len; i++) {
            y[yOff + i] += a * HalfFloat.toFloat(v.get(SHORT_LE, vOff + 2L * i));
        }
    }
}
