package io.tandem.engine.tensor;

import static io.tandem.engine.tensor.KernelSpecies.B;
import static io.tandem.engine.tensor.KernelSpecies.F;
import static io.tandem.engine.tensor.KernelSpecies.I;
import static io.tandem.engine.tensor.KernelSpecies.LANES;
import static io.tandem.engine.tensor.KernelSpecies.LE;
import static io.tandem.engine.tensor.KernelSpecies.SHORT_LE;
import static io.tandem.engine.tensor.KernelSpecies.VECTORIZED;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Objects;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

/**
 * Q4_0 weights: per 32 elements one f16 scale {@code d} then 16 bytes; element {@code j} is the
 * low nibble of byte {@code j}, element {@code j + 16} the high nibble; value
 * {@code d * (nibble - 8)} (ggml {@code block_q4_0}).
 *
 * <p>Same scheme as {@link Q8_0WeightMatrix}: bytes are zero-extended to int lanes, split into
 * nibbles and re-centred there (x86 has no byte-lane shift), converted to floats, summed per
 * block with FMAs and scaled once per block.
 */
final class Q4_0WeightMatrix extends WeightMatrix {
    static final int BLOCK = 32;
    static final int BLOCK_BYTES = 18;
    private static final int QUANTS = 2;
    private static final int HALF = BLOCK / 2;
    private static final int LOW_NIBBLE = 0x0F;
    private static final int ZERO_POINT = 8;

    Q4_0WeightMatrix(MemorySegment data, int rows, int cols) {
        super(data, rows, cols, (long) cols / BLOCK * BLOCK_BYTES);
    }

    @Override
    public GgmlType type() {
        return GgmlType.Q4_0;
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
        float[] xSums = blockSums(x, blocks);
        int quarter = (rowEnd - rowStart) / 4;
        for (int i = 0; i < quarter; i++) {
            dot4Rows(data, rowBytes, x, xSums, blocks, out, rowStart + i, quarter);
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
                for (int j = 0; j < HALF; j += LANES) {
                    IntVector q = (IntVector) ByteVector.fromMemorySegment(B, data, off + QUANTS + j, LE)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    ((FloatVector) q.and(LOW_NIBBLE).sub(ZERO_POINT).convert(VectorOperators.I2F, 0))
                            .mul(dv).intoArray(out, o + j);
                    ((FloatVector) q.lanewise(VectorOperators.LSHR, 4).sub(ZERO_POINT).convert(VectorOperators.I2F, 0))
                            .mul(dv).intoArray(out, o + HALF + j);
                }
            } else {
                for (int j = 0; j < HALF; j++) {
                    int q = data.get(ValueLayout.JAVA_BYTE, off + QUANTS + j) & 0xFF;
                    out[o + j] = ((q & LOW_NIBBLE) - ZERO_POINT) * d;
                    out[o + HALF + j] = ((q >>> 4) - ZERO_POINT) * d;
                }
            }
        }
    }

    /** One row: two accumulators over alternate blocks hide the FMA latency. */
    private static float dotRow(MemorySegment w, long off, float[] x, int xOff, int blocks) {
        MemorySegment row = w.asSlice(off, (long) blocks * BLOCK_BYTES);
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        for (int b = 0; b < blocks; b++) {
            long o = (long) b * BLOCK_BYTES;
            int xo = xOff + b * BLOCK;
            FloatVector s = FloatVector.zero(F);
            for (int j = 0; j < HALF; j += LANES) {
                IntVector q = (IntVector) ByteVector.fromMemorySegment(B, row, o + QUANTS + j, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                s = ((FloatVector) q.and(LOW_NIBBLE).sub(ZERO_POINT).convert(VectorOperators.I2F, 0))
                        .fma(FloatVector.fromArray(F, x, xo + j), s);
                s = ((FloatVector) q.lanewise(VectorOperators.LSHR, 4).sub(ZERO_POINT).convert(VectorOperators.I2F, 0))
                        .fma(FloatVector.fromArray(F, x, xo + HALF + j), s);
            }
            FloatVector d = FloatVector.broadcast(F, HalfFloat.TABLE[row.get(SHORT_LE, o) & 0xFFFF]);
            if ((b & 1) == 0) {
                acc0 = s.fma(d, acc0);
            } else {
                acc1 = s.fma(d, acc1);
            }
        }
        return acc0.add(acc1).reduceLanes(VectorOperators.ADD);
    }

    /** Per-thread scratch for {@link #blockSums}. */
    private static final ThreadLocal<float[]> X_SUMS = ThreadLocal.withInitial(() -> new float[0]);

    /** {@code sums[b] = sum_{j < 32} x[32b + j]}, in a per-thread scratch. */
    private static float[] blockSums(float[] x, int blocks) {
        float[] sums = X_SUMS.get();
        if (sums.length < blocks) {
            sums = new float[blocks];
            X_SUMS.set(sums);
        }
        for (int b = 0; b < blocks; b++) {
            float s = 0f;
            for (int j = 0; j < BLOCK; j++) {
                s += x[b * BLOCK + j];
            }
            sums[b] = s;
        }
        return sums;
    }

    /**
     * Rows {@code r + k * stride}, {@code k < 4}, as {@link Q8_0WeightMatrix}'s kernel. The zero
     * point is taken out of the vector loop: {@code sum_j d (q_j - 8) x_j = d sum_j q_j x_j - 8 d xSums[b]}, the second term
     * accumulated in a scalar per row; this saves two vector subtractions per block.
     */
    private static void dot4Rows(MemorySegment w, long rowBytes, float[] x, float[] xSums, int blocks,
                                 float[] out, int r, int stride) {
        MemorySegment w0 = w.asSlice(r * rowBytes, rowBytes);
        MemorySegment w1 = w.asSlice((r + stride) * rowBytes, rowBytes);
        MemorySegment w2 = w.asSlice((r + 2 * stride) * rowBytes, rowBytes);
        MemorySegment w3 = w.asSlice((r + 3 * stride) * rowBytes, rowBytes);
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        FloatVector acc2 = FloatVector.zero(F);
        FloatVector acc3 = FloatVector.zero(F);
        float zp0 = 0f;
        float zp1 = 0f;
        float zp2 = 0f;
        float zp3 = 0f;
        for (int b = 0; b < blocks; b++) {
            long o = (long) b * BLOCK_BYTES;
            int xo = b * BLOCK;
            FloatVector xlo = FloatVector.fromArray(F, x, xo);
            FloatVector xhi = FloatVector.fromArray(F, x, xo + HALF);
            IntVector q0 = (IntVector) ByteVector.fromMemorySegment(B, w0, o + QUANTS, LE)
                    .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            IntVector q1 = (IntVector) ByteVector.fromMemorySegment(B, w1, o + QUANTS, LE)
                    .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            IntVector q2 = (IntVector) ByteVector.fromMemorySegment(B, w2, o + QUANTS, LE)
                    .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            IntVector q3 = (IntVector) ByteVector.fromMemorySegment(B, w3, o + QUANTS, LE)
                    .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            FloatVector s0 = ((FloatVector) q0.and(LOW_NIBBLE).convert(VectorOperators.I2F, 0)).mul(xlo);
            FloatVector s1 = ((FloatVector) q1.and(LOW_NIBBLE).convert(VectorOperators.I2F, 0)).mul(xlo);
            FloatVector s2 = ((FloatVector) q2.and(LOW_NIBBLE).convert(VectorOperators.I2F, 0)).mul(xlo);
            FloatVector s3 = ((FloatVector) q3.and(LOW_NIBBLE).convert(VectorOperators.I2F, 0)).mul(xlo);
            s0 = ((FloatVector) q0.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(xhi, s0);
            s1 = ((FloatVector) q1.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(xhi, s1);
            s2 = ((FloatVector) q2.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(xhi, s2);
            s3 = ((FloatVector) q3.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(xhi, s3);
            for (int j = LANES; j < HALF; j += LANES) {
                xlo = FloatVector.fromArray(F, x, xo + j);
                xhi = FloatVector.fromArray(F, x, xo + HALF + j);
                q0 = (IntVector) ByteVector.fromMemorySegment(B, w0, o + QUANTS + j, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                q1 = (IntVector) ByteVector.fromMemorySegment(B, w1, o + QUANTS + j, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                q2 = (IntVector) ByteVector.fromMemorySegment(B, w2, o + QUANTS + j, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                q3 = (IntVector) ByteVector.fromMemorySegment(B, w3, o + QUANTS + j, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                s0 = ((FloatVector) q0.and(LOW_NIBBLE).convert(VectorOperators.I2F, 0)).fma(xlo, s0);
                s1 = ((FloatVector) q1.and(LOW_NIBBLE).convert(VectorOperators.I2F, 0)).fma(xlo, s1);
                s2 = ((FloatVector) q2.and(LOW_NIBBLE).convert(VectorOperators.I2F, 0)).fma(xlo, s2);
                s3 = ((FloatVector) q3.and(LOW_NIBBLE).convert(VectorOperators.I2F, 0)).fma(xlo, s3);
                s0 = ((FloatVector) q0.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(xhi, s0);
                s1 = ((FloatVector) q1.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(xhi, s1);
                s2 = ((FloatVector) q2.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(xhi, s2);
                s3 = ((FloatVector) q3.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(xhi, s3);
            }
            float d0 = HalfFloat.TABLE[w0.get(SHORT_LE, o) & 0xFFFF];
            float d1 = HalfFloat.TABLE[w1.get(SHORT_LE, o) & 0xFFFF];
            float d2 = HalfFloat.TABLE[w2.get(SHORT_LE, o) & 0xFFFF];
            float d3 = HalfFloat.TABLE[w3.get(SHORT_LE, o) & 0xFFFF];
            acc0 = s0.fma(FloatVector.broadcast(F, d0), acc0);
            acc1 = s1.fma(FloatVector.broadcast(F, d1), acc1);
            acc2 = s2.fma(FloatVector.broadcast(F, d2), acc2);
            acc3 = s3.fma(FloatVector.broadcast(F, d3), acc3);
            float xs = xSums[b];
            zp0 += d0 * xs;
            zp1 += d1 * xs;
            zp2 += d2 * xs;
            zp3 += d3 * xs;
        }
        out[r] = acc0.reduceLanes(VectorOperators.ADD) - ZERO_POINT * zp0;
        out[r + stride] = acc1.reduceLanes(VectorOperators.ADD) - ZERO_POINT * zp1;
        out[r + 2 * stride] = acc2.reduceLanes(VectorOperators.ADD) - ZERO_POINT * zp2;
        out[r + 3 * stride] = acc3.reduceLanes(VectorOperators.ADD) - ZERO_POINT * zp3;
    }

    private float dotScalar(long off, float[] x, int xOff) {
        float sum = 0f;
        for (int b = 0; b < cols / BLOCK; b++, off += BLOCK_BYTES) {
            float partial = 0f;
            int xo = xOff + b * BLOCK;
            for (int j = 0; j < HALF; j++) {
                int q = data.get(ValueLayout.JAVA_BYTE, off + QUANTS + j) & 0xFF;
                partial += ((q & LOW_NIBBLE) - ZERO_POINT) * x[xo + j] + ((q >>> 4) - ZERO_POINT) * x[xo + HALF + j];
            }
            sum += HalfFloat.TABLE[data.get(SHORT_LE, off) & 0xFFFF] * partial;
        }
        return sum;
    }
}
