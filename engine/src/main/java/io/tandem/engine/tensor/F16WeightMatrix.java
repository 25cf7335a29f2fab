package io.tandem.engine.tensor;

import static io.tandem.engine.tensor.KernelSpecies.F;
import static io.tandem.engine.tensor.KernelSpecies.I;
import static io.tandem.engine.tensor.KernelSpecies.LANES;
import static io.tandem.engine.tensor.KernelSpecies.LE;
import static io.tandem.engine.tensor.KernelSpecies.S;
import static io.tandem.engine.tensor.KernelSpecies.SHORT_LE;
import static io.tandem.engine.tensor.KernelSpecies.VECTORIZED;

import java.lang.foreign.MemorySegment;
import java.util.Objects;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;

/**
 * F16 weights: {@code cols} IEEE binary16 values per row. Lanes are widened with the bit
 * conversion of {@link HalfFloat#toFloats}, written out inline: kernels call no helper that
 * takes or returns a vector, since C2 boxes a vector that crosses a call it does not inline.
 */
final class F16WeightMatrix extends WeightMatrix {
    private static final int HALF_BYTES = 2;
    private static final float EXPONENT_REBIAS = 0x1p112f;

    F16WeightMatrix(MemorySegment data, int rows, int cols) {
        super(data, rows, cols, (long) cols * HALF_BYTES);
    }

    @Override
    public GgmlType type() {
        return GgmlType.F16;
    }

    @Override
    public float dot(int row, float[] x, int xOffset) {
        long off = rowOffset(row);
        Objects.checkFromIndexSize(xOffset, cols, x.length);
        return dotRow(data, off, x, xOffset, cols);
    }

    private static float dotRow(MemorySegment w, long off, float[] x, int xOffset, int cols) {
        FloatVector acc = FloatVector.zero(F);
        int i = 0;
        if (VECTORIZED) {
            for (int bound = F.loopBound(cols); i < bound; i += LANES) {
                IntVector h = (IntVector) ShortVector.fromMemorySegment(S, w, off + (long) i * HALF_BYTES, LE)
                        .convertShape(VectorOperators.S2I, I, 0);
                IntVector magnitude = h.and(0x7FFF);
                IntVector shifted = magnitude.lanewise(VectorOperators.LSHL, 13);
                VectorMask<Integer> special = magnitude.compare(VectorOperators.GE, 0x7C00);
                IntVector bits = shifted.reinterpretAsFloats().mul(EXPONENT_REBIAS).reinterpretAsInts()
                        .blend(shifted.or(0x7F80_0000).lanewise(VectorOperators.OR, 0x0040_0000,
                                magnitude.compare(VectorOperators.GT, 0x7C00)), special);
                acc = bits.or(h.and(0x8000_0000)).reinterpretAsFloats()
                        .fma(FloatVector.fromArray(F, x, xOffset + i), acc);
            }
        }
        float sum = acc.reduceLanes(VectorOperators.ADD);
        for (; i < cols; i++) {
            sum += HalfFloat.TABLE[w.get(SHORT_LE, off + (long) i * HALF_BYTES) & 0xFFFF] * x[xOffset + i];
        }
        return sum;
    }

    @Override
    void dequantizeRange(int row, int colStart, int len, float[] out, int outOffset) {
        long off = rowOffset(row) + (long) colStart * HALF_BYTES;
        MemorySegment w = data;
        for (int i = 0; i < len; i++) {
            out[outOffset + i] = HalfFloat.TABLE[w.get(SHORT_LE, off + (long) i * HALF_BYTES) & 0xFFFF];
        }
    }
}
