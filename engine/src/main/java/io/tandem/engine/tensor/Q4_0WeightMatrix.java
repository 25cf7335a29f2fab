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
 * Q4_0 weights: per 32 elements one f16 scale {@code d} then 16 bytes; element {@code j} is the
 * low nibble of byte {@code j}, element {@code j + 16} the high nibble; value
 * {@code d * (nibble - 8)} (ggml {@code block_q4_0}).
 *
 * <p>Same scheme as {@link Q8_0WeightMatrix}: nibbles are split and re-centred in byte lanes,
 * widened to floats, summed per block with FMAs and scaled once per block.
 */
final class Q4_0WeightMatrix extends WeightMatrix {
    static final int BLOCK = 32;
    static final int BLOCK_BYTES = 18;
    private static final int QUANTS = 2;
    private static final int HALF = BLOCK / 2;
    private static final byte LOW_NIBBLE = 0x0F;
    private static final byte ZERO_POINT = 8;

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
        int r = rowStart;
        for (; r + 2 <= rowEnd; r += 2) {
            dot2Rows(data, r * rowBytes, rowBytes, x, blocks, out, r);
        }
        for (; r < rowEnd; r++) {
            out[r] = dotRow(data, r * rowBytes, x, 0, blocks);
        }
    }

    @Override
    public void dequantizeRow(int row, float[] out, int outOffset) {
        long off = rowOffset(row);
        Objects.checkFromIndexSize(outOffset, cols, out.length);
        for (int b = 0; b < cols / BLOCK; b++, off += BLOCK_BYTES) {
            float d = HalfFloat.toFloat(data.get(SHORT_LE, off));
            int o = outOffset + b * BLOCK;
            if (VECTORIZED) {
                FloatVector dv = FloatVector.broadcast(F, d);
                for (int j = 0; j < HALF; j += LANES) {
                    ByteVector q = ByteVector.fromMemorySegment(B, data, off + QUANTS + j, LE);
                    ((FloatVector) q.and(LOW_NIBBLE).sub(ZERO_POINT)
                            .convertShape(VectorOperators.B2F, F, 0)).mul(dv).intoArray(out, o + j);
                    ((FloatVector) q.lanewise(VectorOperators.LSHR, 4).sub(ZERO_POINT)
                            .convertShape(VectorOperators.B2F, F, 0)).mul(dv).intoArray(out, o + HALF + j);
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

    private static float dotRow(MemorySegment w, long off, float[] x, int xOff, int blocks) {
        FloatVector acc = FloatVector.zero(F);
        for (int b = 0; b < blocks; b++, off += BLOCK_BYTES) {
            int xo = xOff + b * BLOCK;
            FloatVector s = FloatVector.zero(F);
            for (int j = 0; j < HALF; j += LANES) {
                ByteVector q = ByteVector.fromMemorySegment(B, w, off + QUANTS + j, LE);
                s = ((FloatVector) q.and(LOW_NIBBLE).sub(ZERO_POINT).convertShape(VectorOperators.B2F, F, 0))
                        .fma(FloatVector.fromArray(F, x, xo + j), s);
                s = ((FloatVector) q.lanewise(VectorOperators.LSHR, 4).sub(ZERO_POINT)
                        .convertShape(VectorOperators.B2F, F, 0)).fma(FloatVector.fromArray(F, x, xo + HALF + j), s);
            }
            acc = s.fma(FloatVector.broadcast(F, HalfFloat.toFloat(w.get(SHORT_LE, off))), acc);
        }
        return acc.reduceLanes(VectorOperators.ADD);
    }

    /** Rows {@code r} and {@code r+1}: shares the x loads and gives two independent FMA chains. */
    private static void dot2Rows(MemorySegment w, long off, long rowBytes, float[] x, int blocks,
                                 float[] out, int r) {
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        for (int b = 0; b < blocks; b++, off += BLOCK_BYTES) {
            int xo = b * BLOCK;
            FloatVector s0 = FloatVector.zero(F);
            FloatVector s1 = FloatVector.zero(F);
            for (int j = 0; j < HALF; j += LANES) {
                FloatVector xlo = FloatVector.fromArray(F, x, xo + j);
                FloatVector xhi = FloatVector.fromArray(F, x, xo + HALF + j);
                ByteVector q0 = ByteVector.fromMemorySegment(B, w, off + QUANTS + j, LE);
                ByteVector q1 = ByteVector.fromMemorySegment(B, w, off + rowBytes + QUANTS + j, LE);
                s0 = ((FloatVector) q0.and(LOW_NIBBLE).sub(ZERO_POINT).convertShape(VectorOperators.B2F, F, 0))
                        .fma(xlo, s0);
                s1 = ((FloatVector) q1.and(LOW_NIBBLE).sub(ZERO_POINT).convertShape(VectorOperators.B2F, F, 0))
                        .fma(xlo, s1);
                s0 = ((FloatVector) q0.lanewise(VectorOperators.LSHR, 4).sub(ZERO_POINT)
                        .convertShape(VectorOperators.B2F, F, 0)).fma(xhi, s0);
                s1 = ((FloatVector) q1.lanewise(VectorOperators.LSHR, 4).sub(ZERO_POINT)
                        .convertShape(VectorOperators.B2F, F, 0)).fma(xhi, s1);
            }
            acc0 = s0.fma(FloatVector.broadcast(F, HalfFloat.toFloat(w.get(SHORT_LE, off))), acc0);
            acc1 = s1.fma(FloatVector.broadcast(F, HalfFloat.toFloat(w.get(SHORT_LE, off + rowBytes))), acc1);
        }
        out[r] = acc0.reduceLanes(VectorOperators.ADD);
        out[r + 1] = acc1.reduceLanes(VectorOperators.ADD);
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
            sum += HalfFloat.toFloat(data.get(SHORT_LE, off)) * partial;
        }
        return sum;
    }
}
