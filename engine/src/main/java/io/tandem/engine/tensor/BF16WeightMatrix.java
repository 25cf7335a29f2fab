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
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;

/**
 * BF16 weights: {@code cols} bfloat16 values per row; a bfloat16 is the upper half of a float,
 * so widening is a 16-bit left shift ({@code ggml_compute_bf16_to_fp32}).
 */
final class BF16WeightMatrix extends WeightMatrix {
    private static final int HALF_BYTES = 2;

    BF16WeightMatrix(MemorySegment data, int rows, int cols) {
        super(data, rows, cols, (long) cols * HALF_BYTES);
    }

    @Override
    public GgmlType type() {
        return GgmlType.BF16;
    }

    @Override
    public float dot(int row, float[] x, int xOffset) {
        long off = rowOffset(row);
        Objects.checkFromIndexSize(xOffset, cols, x.length);
        return dotRow(data, off, x, xOffset, cols);
    }

    private static float dotRow(MemorySegment w, long off, float[] x, int xOffset, int cols) {
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        int i = 0;
        if (VECTORIZED) {
            for (int pairs = cols - cols % (2 * LANES); i < pairs; i += 2 * LANES) {
                FloatVector w0 = ShortVector.fromMemorySegment(S, w, off + (long) i * HALF_BYTES, LE)
                        .convertShape(VectorOperators.S2I, I, 0).lanewise(VectorOperators.LSHL, 16)
                        .reinterpretAsFloats();
                FloatVector w1 = ShortVector.fromMemorySegment(S, w, off + (long) (i + LANES) * HALF_BYTES, LE)
                        .convertShape(VectorOperators.S2I, I, 0).lanewise(VectorOperators.LSHL, 16)
                        .reinterpretAsFloats();
                acc0 = w0.fma(FloatVector.fromArray(F, x, xOffset + i), acc0);
                acc1 = w1.fma(FloatVector.fromArray(F, x, xOffset + i + LANES), acc1);
            }
        }
        float sum = acc0.add(acc1).reduceLanes(VectorOperators.ADD);
        for (; i < cols; i++) {
            sum += Float.intBitsToFloat(w.get(SHORT_LE, off + (long) i * HALF_BYTES) << 16) * x[xOffset + i];
        }
        return sum;
    }

    @Override
    void dequantizeRange(int row, int colStart, int len, float[] out, int outOffset) {
        long off = rowOffset(row) + (long) colStart * HALF_BYTES;
        MemorySegment w = data;
        int i = 0;
        if (VECTORIZED) {
            for (int bound = F.loopBound(len); i < bound; i += LANES) {
                ShortVector.fromMemorySegment(S, w, off + (long) i * HALF_BYTES, LE)
                        .convertShape(VectorOperators.S2I, I, 0).lanewise(VectorOperators.LSHL, 16)
                        .reinterpretAsFloats().intoArray(out, outOffset + i);
            }
        }
        for (; i < len; i++) {
            out[outOffset + i] = Float.intBitsToFloat(w.get(SHORT_LE, off + (long) i * HALF_BYTES) << 16);
        }
    }
}
