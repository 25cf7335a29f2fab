package io.tandem.engine.tensor;

import static io.tandem.engine.tensor.KernelSpecies.F;
import static io.tandem.engine.tensor.KernelSpecies.FLOAT_LE;
import static io.tandem.engine.tensor.KernelSpecies.LANES;
import static io.tandem.engine.tensor.KernelSpecies.LE;

import java.lang.foreign.MemorySegment;
import java.util.Objects;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/** F32 weights: {@code cols} little-endian floats per row. Pure bandwidth: loads and FMAs. */
final class F32WeightMatrix extends WeightMatrix {
    private static final int FLOAT_BYTES = Float.BYTES;

    F32WeightMatrix(MemorySegment data, int rows, int cols) {
        super(data, rows, cols, (long) cols * FLOAT_BYTES);
    }

    @Override
    public GgmlType type() {
        return GgmlType.F32;
    }

    @Override
    public float dot(int row, float[] x, int xOffset) {
        long off = rowOffset(row);
        Objects.checkFromIndexSize(xOffset, cols, x.length);
        return dotRow(data, off, x, xOffset, cols);
    }

    @Override
    void matvec(float[] x, float[] out, int rowStart, int rowEnd) {
        int quarter = (rowEnd - rowStart) / 4;
        for (int i = 0; i < quarter; i++) {
            dot4Rows(data, rowBytes, x, cols, out, rowStart + i, quarter);
        }
        for (int r = rowStart + 4 * quarter; r < rowEnd; r++) {
            out[r] = dotRow(data, r * rowBytes, x, 0, cols);
        }
    }

    @Override
    void dequantizeRange(int row, int colStart, int len, float[] out, int outOffset) {
        long off = rowOffset(row) + (long) colStart * FLOAT_BYTES;
        MemorySegment.copy(data, FLOAT_LE, off, out, outOffset, len);
    }

    private static float dotRow(MemorySegment w, long off, float[] x, int xOff, int cols) {
        MemorySegment row = w.asSlice(off, (long) cols * FLOAT_BYTES);
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        int i = 0;
        for (int pairs = cols - cols % (2 * LANES); i < pairs; i += 2 * LANES) {
            acc0 = FloatVector.fromMemorySegment(F, row, (long) i * FLOAT_BYTES, LE)
                    .fma(FloatVector.fromArray(F, x, xOff + i), acc0);
            acc1 = FloatVector.fromMemorySegment(F, row, (long) (i + LANES) * FLOAT_BYTES, LE)
                    .fma(FloatVector.fromArray(F, x, xOff + i + LANES), acc1);
        }
        float sum = acc0.add(acc1).reduceLanes(VectorOperators.ADD);
        for (; i < cols; i++) {
            sum += row.get(FLOAT_LE, (long) i * FLOAT_BYTES) * x[xOff + i];
        }
        return sum;
    }

    /** Rows {@code r + k * stride}, {@code k < 4}: one x load per four rows, four sequential streams (as Q8_0). */
    private static void dot4Rows(MemorySegment w, long rowBytes, float[] x, int cols,
                                 float[] out, int r, int stride) {
        MemorySegment w0 = w.asSlice(r * rowBytes, rowBytes);
        MemorySegment w1 = w.asSlice((r + stride) * rowBytes, rowBytes);
        MemorySegment w2 = w.asSlice((r + 2 * stride) * rowBytes, rowBytes);
        MemorySegment w3 = w.asSlice((r + 3 * stride) * rowBytes, rowBytes);
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        FloatVector acc2 = FloatVector.zero(F);
        FloatVector acc3 = FloatVector.zero(F);
        int i = 0;
        for (int bound = F.loopBound(cols); i < bound; i += LANES) {
            long o = (long) i * FLOAT_BYTES;
            FloatVector xv = FloatVector.fromArray(F, x, i);
            acc0 = FloatVector.fromMemorySegment(F, w0, o, LE).fma(xv, acc0);
            acc1 = FloatVector.fromMemorySegment(F, w1, o, LE).fma(xv, acc1);
            acc2 = FloatVector.fromMemorySegment(F, w2, o, LE).fma(xv, acc2);
            acc3 = FloatVector.fromMemorySegment(F, w3, o, LE).fma(xv, acc3);
        }
        float s0 = acc0.reduceLanes(VectorOperators.ADD);
        float s1 = acc1.reduceLanes(VectorOperators.ADD);
        float s2 = acc2.reduceLanes(VectorOperators.ADD);
        float s3 = acc3.reduceLanes(VectorOperators.ADD);
        for (; i < cols; i++) {
            long o = (long) i * FLOAT_BYTES;
            s0 += w0.get(FLOAT_LE, o) * x[i];
            s1 += w1.get(FLOAT_LE, o) * x[i];
            s2 += w2.get(FLOAT_LE, o) * x[i];
            s3 += w3.get(FLOAT_LE, o) * x[i];
        }
        out[r] = s0;
        out[r + stride] = s1;
        out[r + 2 * stride] = s2;
        out[r + 3 * stride] = s3;
    }
}
