package io.tandem.engine.tensor;

import static io.tandem.engine.tensor.KernelSpecies.B;
import static io.tandem.engine.tensor.KernelSpecies.F;
import static io.tandem.engine.tensor.KernelSpecies.LANES;
import static io.tandem.engine.tensor.KernelSpecies.LE;
import static io.tandem.engine.tensor.KernelSpecies.SHORT_LE;
import static io.tandem.engine.tensor.KernelSpecies.VECTORIZED;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Objects;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * Q8_0 weights: per 32 elements one f16 scale {@code d} then 32 int8 {@code q}; value
 * {@code d * q} (ggml {@code block_q8_0}).
 *
 * <p>The dot kernel widens 32 quants to floats, forms the block's partial sum
 * {@code sum_j q_j * x_j} with FMAs and adds {@code d * partial} to a vector accumulator: per
 * block one scale load and broadcast, not 32 multiplies by {@code d}. The decode kernel computes
 * four rows at once, one from each quarter of its row range: each {@code x} load serves four
 * rows, and memory sees four long sequential streams (consecutive rows would give short streams
 * that restart the hardware prefetcher at every row group when rows are short: 10-20 % slower
 * for {@code cols = 2048}).
 */
final class Q8_0WeightMatrix extends WeightMatrix {
    static final int BLOCK = 32;
    static final int BLOCK_BYTES = 34;
    private static final int QUANTS = 2;

    Q8_0WeightMatrix(MemorySegment data, int rows, int cols) {
        super(data, rows, cols, (long) cols / BLOCK * BLOCK_BYTES);
    }

    @Override
    public GgmlType type() {
        return GgmlType.Q8_0;
    }

    @Override
    public float dot(int row, float[] x, int xOffset) {
        long off = rowOffset(row);
        Objects.checkFromIndexSize(xOffset, cols, x.length);
        return VECTORIZED ? dotRow(data, off, x, xOffset, cols / BLOCK) : dotScalar(off, x, xOffset);
    }

    @Override
    void matvec(float[] x, float[] out, int rowStart, int rowEnd) {
        if (!VECTORIZED) {
            super.matvec(x, out, rowStart, rowEnd);
            return;
        }
        int blocks = cols / BLOCK;
        int quarter = (rowEnd - rowStart) / 4;
        for (int i = 0; i < quarter; i++) {
            dot4Rows(data, rowBytes, x, blocks, out, rowStart + i, quarter);
        }
        for (int r = rowStart + 4 * quarter; r < rowEnd; r++) {
            out[r] = dotRow(data, r * rowBytes, x, 0, blocks);
        }
    }

    @Override
    void dequantizeRange(int row, int colStart, int len, float[] out, int outOffset) {
        long off = rowOffset(row) + (long) (colStart / BLOCK) * BLOCK_BYTES;
        for (int b = 0; b < len / BLOCK; b++, off += BLOCK_BYTES) {
            float d = HalfFloat.TABLE[data.get(SHORT_LE, off) & 0xFFFF];
            int o = outOffset + b * BLOCK;
            if (VECTORIZED) {
                FloatVector dv = FloatVector.broadcast(F, d);
                for (int j = 0; j < BLOCK; j += LANES) {
                    ((FloatVector) ByteVector.fromMemorySegment(B, data, off + QUANTS + j, LE)
                            .convertShape(VectorOperators.B2F, F, 0)).mul(dv).intoArray(out, o + j);
                }
            } else {
                for (int j = 0; j < BLOCK; j++) {
                    out[o + j] = data.get(ValueLayout.JAVA_BYTE, off + QUANTS + j) * d;
                }
            }
        }
    }

    /**
     * One row: two accumulators over alternate blocks hide the FMA latency. Offsets are computed
     * from the block index within a slice of the row, which lets C2 hoist the bounds checks; the
     * slice itself is scalar-replaced (no allocation).
     */
    private static float dotRow(MemorySegment w, long off, float[] x, int xOff, int blocks) {
        MemorySegment row = w.asSlice(off, (long) blocks * BLOCK_BYTES);
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        int b = 0;
        for (; b + 2 <= blocks; b += 2) {
            long o = (long) b * BLOCK_BYTES;
            int xo = xOff + b * BLOCK;
            FloatVector s0 = ((FloatVector) ByteVector.fromMemorySegment(B, row, o + QUANTS, LE)
                    .convertShape(VectorOperators.B2F, F, 0)).mul(FloatVector.fromArray(F, x, xo));
            FloatVector s1 = ((FloatVector) ByteVector.fromMemorySegment(B, row, o + BLOCK_BYTES + QUANTS, LE)
                    .convertShape(VectorOperators.B2F, F, 0)).mul(FloatVector.fromArray(F, x, xo + BLOCK));
            for (int j = LANES; j < BLOCK; j += LANES) {
                s0 = ((FloatVector) ByteVector.fromMemorySegment(B, row, o + QUANTS + j, LE)
                        .convertShape(VectorOperators.B2F, F, 0)).fma(FloatVector.fromArray(F, x, xo + j), s0);
                s1 = ((FloatVector) ByteVector.fromMemorySegment(B, row, o + BLOCK_BYTES + QUANTS + j, LE)
                        .convertShape(VectorOperators.B2F, F, 0)).fma(FloatVector.fromArray(F, x, xo + BLOCK + j), s1);
            }
            acc0 = s0.fma(FloatVector.broadcast(F, HalfFloat.TABLE[row.get(SHORT_LE, o) & 0xFFFF]), acc0);
            acc1 = s1.fma(FloatVector.broadcast(F, HalfFloat.TABLE[row.get(SHORT_LE, o + BLOCK_BYTES) & 0xFFFF]), acc1);
        }
        if (b < blocks) {
            long o = (long) b * BLOCK_BYTES;
            int xo = xOff + b * BLOCK;
            FloatVector s0 = FloatVector.zero(F);
            for (int j = 0; j < BLOCK; j += LANES) {
                s0 = ((FloatVector) ByteVector.fromMemorySegment(B, row, o + QUANTS + j, LE)
                        .convertShape(VectorOperators.B2F, F, 0)).fma(FloatVector.fromArray(F, x, xo + j), s0);
            }
            acc0 = s0.fma(FloatVector.broadcast(F, HalfFloat.TABLE[row.get(SHORT_LE, o) & 0xFFFF]), acc0);
        }
        return acc0.add(acc1).reduceLanes(VectorOperators.ADD);
    }

    /** Rows {@code r + k * stride}, {@code k < 4}, against {@code x[0, cols)}. */
    private static void dot4Rows(MemorySegment w, long rowBytes, float[] x, int blocks,
                                 float[] out, int r, int stride) {
        MemorySegment w0 = w.asSlice(r * rowBytes, rowBytes);
        MemorySegment w1 = w.asSlice((r + stride) * rowBytes, rowBytes);
        MemorySegment w2 = w.asSlice((r + 2 * stride) * rowBytes, rowBytes);
        MemorySegment w3 = w.asSlice((r + 3 * stride) * rowBytes, rowBytes);
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        FloatVector acc2 = FloatVector.zero(F);
        FloatVector acc3 = FloatVector.zero(F);
        for (int b = 0; b < blocks; b++) {
            long o = (long) b * BLOCK_BYTES;
            int xo = b * BLOCK;
            FloatVector xv = FloatVector.fromArray(F, x, xo);
            FloatVector s0 = ((FloatVector) ByteVector.fromMemorySegment(B, w0, o + QUANTS, LE)
                    .convertShape(VectorOperators.B2F, F, 0)).mul(xv);
            FloatVector s1 = ((FloatVector) ByteVector.fromMemorySegment(B, w1, o + QUANTS, LE)
                    .convertShape(VectorOperators.B2F, F, 0)).mul(xv);
            FloatVector s2 = ((FloatVector) ByteVector.fromMemorySegment(B, w2, o + QUANTS, LE)
                    .convertShape(VectorOperators.B2F, F, 0)).mul(xv);
            FloatVector s3 = ((FloatVector) ByteVector.fromMemorySegment(B, w3, o + QUANTS, LE)
                    .convertShape(VectorOperators.B2F, F, 0)).mul(xv);
            for (int j = LANES; j < BLOCK; j += LANES) {
                xv = FloatVector.fromArray(F, x, xo + j);
                s0 = ((FloatVector) ByteVector.fromMemorySegment(B, w0, o + QUANTS + j, LE)
                        .convertShape(VectorOperators.B2F, F, 0)).fma(xv, s0);
                s1 = ((FloatVector) ByteVector.fromMemorySegment(B, w1, o + QUANTS + j, LE)
                        .convertShape(VectorOperators.B2F, F, 0)).fma(xv, s1);
                s2 = ((FloatVector) ByteVector.fromMemorySegment(B, w2, o + QUANTS + j, LE)
                        .convertShape(VectorOperators.B2F, F, 0)).fma(xv, s2);
                s3 = ((FloatVector) ByteVector.fromMemorySegment(B, w3, o + QUANTS + j, LE)
                        .convertShape(VectorOperators.B2F, F, 0)).fma(xv, s3);
            }
            acc0 = s0.fma(FloatVector.broadcast(F, HalfFloat.TABLE[w0.get(SHORT_LE, o) & 0xFFFF]), acc0);
            acc1 = s1.fma(FloatVector.broadcast(F, HalfFloat.TABLE[w1.get(SHORT_LE, o) & 0xFFFF]), acc1);
            acc2 = s2.fma(FloatVector.broadcast(F, HalfFloat.TABLE[w2.get(SHORT_LE, o) & 0xFFFF]), acc2);
            acc3 = s3.fma(FloatVector.broadcast(F, HalfFloat.TABLE[w3.get(SHORT_LE, o) & 0xFFFF]), acc3);
        }
        out[r] = acc0.reduceLanes(VectorOperators.ADD);
        out[r + stride] = acc1.reduceLanes(VectorOperators.ADD);
        out[r + 2 * stride] = acc2.reduceLanes(VectorOperators.ADD);
        out[r + 3 * stride] = acc3.reduceLanes(VectorOperators.ADD);
    }

    private float dotScalar(long off, float[] x, int xOff) {
        float sum = 0f;
        for (int b = 0; b < cols / BLOCK; b++, off += BLOCK_BYTES) {
            float partial = 0f;
            for (int j = 0; j < BLOCK; j++) {
                partial += data.get(ValueLayout.JAVA_BYTE, off + QUANTS + j) * x[xOff + b * BLOCK + j];
            }
            sum += HalfFloat.TABLE[data.get(SHORT_LE, off) & 0xFFFF] * partial;
        }
        return sum;
    }
}
