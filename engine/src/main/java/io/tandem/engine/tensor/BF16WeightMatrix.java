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
        FloatVector acc = FloatVector.zero(F);
        int i = 0;
        if (VECTORIZED) {
            for (; i + LANES <= cols; i += LANES) {
                FloatVector w = ShortVector.fromMemorySegment(S, data, off + (long) i * HALF_BYTES, LE)
                        .convertShape(VectorOperators.S2I, I, 0).lanewise(VectorOperators.LSHL, 16)
                        .reinterpretAsFloats();
                acc = w.fma(FloatVector.fromArray(F, x, xOffset + i), acc);
            }
        }
        float sum = acc.reduceLanes(VectorOperators.ADD);
        for (; i < cols; i++) {
            sum += toFloat(data.get(SHORT_LE, off + (long) i * HALF_BYTES)) * x[xOffset + i];
        }
        return sum;
    }

    @Override
    public void dequantizeRow(int row, float[] out, int outOffset) {
        long off = rowOffset(row);
        Objects.checkFromIndexSize(outOffset, cols, out.length);
        int i = 0;
        if (VECTORIZED) {
            for (; i + LANES <= cols; i += LANES) {
                ShortVector.fromMemorySegment(S, data, off + (long) i * HALF_BYTES, LE)
                        .convertShape(VectorOperators.S2I, I, 0).lanewise(VectorOperators.LSHL, 16)
                        .reinterpretAsFloats().intoArray(out, outOffset + i);
            }
        }
        for (; i < cols; i++) {
            out[outOffset + i] = toFloat(data.get(SHORT_LE, off + (long) i * HALF_BYTES));
        }
    }

    private static float toFloat(short bits) {
        return Float.intBitsToFloat(bits << 16);
    }
}
