package io.tandem.engine.tensor;

import static io.tandem.engine.tensor.KernelSpecies.F;
import static io.tandem.engine.tensor.KernelSpecies.LANES;
import static io.tandem.engine.tensor.PackedActivations.TOKEN_TILE;

import static io.tandem.engine.tensor.KernelSpecies.FLOAT_LE;

import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;

/**
 * The prefill kernel ({@code n >= PackedActivations.MIN_TOKENS}) behind {@link WeightMatrix#matmulRows}, for every
 * weight type: a register-blocked outer-product GEMM over {@link PackedActivations}.
 *
 * <p>Streaming (one or two token groups: a decode batch of 32 to 64 sequences). The weights are
 * used by so few tokens that reading them from DRAM is half the cost, so they are read once, in
 * memory order, {@value #ROW_TILE} whole rows at a time; F32 weights go straight from their
 * memory into the micro-kernel's broadcasts, so the loads overlap the FMAs. On 2 AVX-512 cores
 * at Llama-3.2-1B layer shapes streaming from DRAM this doubled F32 GFLOP/s at 32 tokens (110 to
 * 218, {@code MatvecBench} section {@code layers}).
 *
 * <p>Blocking (three or more token groups: prefill). A row range is cut into blocks of {@value #ROW_BLOCK} rows and each block's
 * columns into passes of {@value #K_BLOCK}; a pass dequantizes its {@code [ROW_BLOCK, K_BLOCK]}
 * slice of the weights to floats once (per-thread scratch, L2) and multiplies it against every
 * token group. The micro-kernel holds {@value #ROW_TILE} rows x {@code TOKEN_TILE} tokens of
 * sums in 24 vector registers: per column it loads two vectors of the packed activations (the
 * group's column, L1) and broadcasts one weight per row, so 2 + 12 loads feed 24 FMAs and the
 * loop is FMA-bound. Sums live in a per-thread {@code [ROW_BLOCK, groups * TOKEN_TILE]} buffer
 * between passes and are written to {@code out} when the block's last pass is done.
 *
 * <p>Numerics. Each output is one FMA chain over the columns in order,
 * {@code s = fma(w[r][k], x[t][k], s)} for {@code k = 0, 1, ..., cols - 1}, whatever the tiling,
 * the thread count or the other tokens of the batch, with weights dequantized as
 * {@link WeightMatrix#dequantizeRow} (exact for Q8_0/Q4_0: {@code d * q} needs at most 19
 * significant bits). The decode kernels sum in vector lanes instead, so the two paths agree to
 * rounding, not bit for bit.
 */
final class PackedMatmul {
    /** Rows per micro-kernel call: 12 x 2 accumulators + 2 activation vectors + 1 broadcast = 27 of 32 registers. */
    static final int ROW_TILE = PackedActivations.ROW_TILE;
    /** Rows dequantized together: their slice of one pass is {@code 96 * 128 * 4} bytes = 48 KiB (L2). */
    static final int ROW_BLOCK = 8 * ROW_TILE;
    /** Columns per pass; a multiple of every block size. A token group's slice is {@code 128 * TOKEN_TILE * 4} bytes = 16 KiB (L1). */
    static final int K_BLOCK = 128;
    /** Up to this many token groups the weights stream row tile by row tile ({@link #matmulRowStream}). */
    static final int ROW_STREAM_MAX_GROUPS = 2;

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private PackedMatmul() {
    }

    /** The calling thread's activation buffer, for {@link WeightMatrix#matmulRows} without a packed input. */
    static PackedActivations threadScratch() {
        return SCRATCH.get().packed;
    }

    /** {@code out[t * rows + r] = w[r] . x[t]} for every packed token and rows in {@code [rowStart, rowEnd)}. */
    static void matmul(WeightMatrix w, PackedActivations x, float[] out, int rowStart, int rowEnd) {
        if (x.groups() <= ROW_STREAM_MAX_GROUPS) {
            matmulRowStream(w, x, out, rowStart, rowEnd);
        } else {
            matmulBlocked(w, x, out, rowStart, rowEnd);
        }
    }

    /**
     * Few token groups (a decode batch of 32 to 64 sequences): the weights are read once per
     * call, as in a matvec, and so must stream. Whole rows are dequantized {@value #ROW_TILE} at a
     * time (one bulk read per row, in memory order, which the hardware prefetcher follows), and
     * each tile's sums stay in registers over all columns: no pass over the sums, no per-slice
     * dequantization calls. Same FMA chain per output as {@link #matmulBlocked}, so the two agree
     * bit for bit.
     */
    private static void matmulRowStream(WeightMatrix w, PackedActivations x, float[] out, int rowStart, int rowEnd) {
        int cols = w.cols;
        int rows = w.rows;
        int n = x.tokens();
        int groups = x.groups();
        float[] xp = x.panels();
        Scratch scratch = SCRATCH.get();
        float[] tile = scratch.rowTile(ROW_TILE * cols);
        float[] sums = scratch.sums(ROW_TILE * TOKEN_TILE);
        int r0 = rowStart;
        while (r0 < rowEnd) {
            int left = rowEnd - r0;
            int tileRows = left >= ROW_TILE ? ROW_TILE : left >= 4 ? 4 : 1;
            boolean direct = tileRows == ROW_TILE && w.type() == GgmlType.F32;
            if (!direct) {
                for (int i = 0; i < tileRows; i++) {
                    w.dequantizeRange(r0 + i, 0, cols, tile, i * cols);
                }
            }
            for (int g = 0; g < groups; g++) {
                int xOff = g * cols * TOKEN_TILE;
                if (direct) {
                    kernel12F32(w.data, r0 * w.rowBytes, w.rowBytes, cols, xp, xOff, sums, 0, TOKEN_TILE);
                } else if (tileRows == ROW_TILE) {
                    kernel12(tile, 0, cols, xp, xOff, sums, 0, TOKEN_TILE, false);
                } else if (tileRows == 4) {
                    kernel4(tile, 0, cols, xp, xOff, sums, 0, TOKEN_TILE, false);
                } else {
                    kernel1(tile, 0, cols, xp, xOff, sums, 0, TOKEN_TILE, false);
                }
                int first = g * TOKEN_TILE;
                int count = Math.min(TOKEN_TILE, n - first);
                for (int j = 0; j < count; j++) {
                    int o = (first + j) * rows + r0;
                    for (int i = 0; i < tileRows; i++) {
                        out[o + i] = sums[i * TOKEN_TILE + j];
                    }
                }
            }
            r0 += tileRows;
        }
    }

    /** Many token groups (prefill): the weights are reused across groups, so they are blocked for L2. */
    private static void matmulBlocked(WeightMatrix w, PackedActivations x, float[] out, int rowStart, int rowEnd) {
        int cols = w.cols;
        int rows = w.rows;
        int n = x.tokens();
        int groups = x.groups();
        int stride = groups * TOKEN_TILE;
        float[] xp = x.panels();
        Scratch scratch = SCRATCH.get();
        float[] wb = scratch.weights;
        float[] sums = scratch.sums(ROW_BLOCK * stride);
        for (int r0 = rowStart; r0 < rowEnd; r0 += ROW_BLOCK) {
            int blockRows = Math.min(ROW_BLOCK, rowEnd - r0);
            for (int k0 = 0; k0 < cols; k0 += K_BLOCK) {
                int kLen = Math.min(K_BLOCK, cols - k0);
                for (int i = 0; i < blockRows; i++) {
                    w.dequantizeRange(r0 + i, k0, kLen, wb, i * kLen);
                }
                boolean accumulate = k0 > 0;
                for (int g = 0; g < groups; g++) {
                    int xOff = (g * cols + k0) * TOKEN_TILE;
                    int i = 0;
                    for (; i + ROW_TILE <= blockRows; i += ROW_TILE) {
                        kernel12(wb, i * kLen, kLen, xp, xOff, sums, i * stride + g * TOKEN_TILE, stride, accumulate);
                    }
                    for (; i + 4 <= blockRows; i += 4) {
                        kernel4(wb, i * kLen, kLen, xp, xOff, sums, i * stride + g * TOKEN_TILE, stride, accumulate);
                    }
                    for (; i < blockRows; i++) {
                        kernel1(wb, i * kLen, kLen, xp, xOff, sums, i * stride + g * TOKEN_TILE, stride, accumulate);
                    }
                }
            }
            for (int t = 0; t < n; t++) {
                int o = t * rows + r0;
                for (int i = 0; i < blockRows; i++) {
                    out[o + i] = sums[i * stride + t];
                }
            }
        }
    }

    /**
     * Rows {@code i < 12} of the tile at {@code w[wOff + i * kLen]} times the token group at
     * {@code x[xOff]}, columns {@code [0, kLen)}; sums of row {@code i} at
     * {@code c[cOff + i * cStride]}, started from zero or (accumulate) from what is there.
     */
    private static void kernel12(float[] w, int wOff, int kLen, float[] x, int xOff,
                                 float[] c, int cOff, int cStride, boolean accumulate) {
        FloatVector zero = FloatVector.zero(F);
        FloatVector a0 = accumulate ? FloatVector.fromArray(F, c, cOff) : zero;
        FloatVector b0 = accumulate ? FloatVector.fromArray(F, c, cOff + LANES) : zero;
        FloatVector a1 = accumulate ? FloatVector.fromArray(F, c, cOff + cStride) : zero;
        FloatVector b1 = accumulate ? FloatVector.fromArray(F, c, cOff + cStride + LANES) : zero;
        FloatVector a2 = accumulate ? FloatVector.fromArray(F, c, cOff + 2 * cStride) : zero;
        FloatVector b2 = accumulate ? FloatVector.fromArray(F, c, cOff + 2 * cStride + LANES) : zero;
        FloatVector a3 = accumulate ? FloatVector.fromArray(F, c, cOff + 3 * cStride) : zero;
        FloatVector b3 = accumulate ? FloatVector.fromArray(F, c, cOff + 3 * cStride + LANES) : zero;
        FloatVector a4 = accumulate ? FloatVector.fromArray(F, c, cOff + 4 * cStride) : zero;
        FloatVector b4 = accumulate ? FloatVector.fromArray(F, c, cOff + 4 * cStride + LANES) : zero;
        FloatVector a5 = accumulate ? FloatVector.fromArray(F, c, cOff + 5 * cStride) : zero;
        FloatVector b5 = accumulate ? FloatVector.fromArray(F, c, cOff + 5 * cStride + LANES) : zero;
        FloatVector a6 = accumulate ? FloatVector.fromArray(F, c, cOff + 6 * cStride) : zero;
        FloatVector b6 = accumulate ? FloatVector.fromArray(F, c, cOff + 6 * cStride + LANES) : zero;
        FloatVector a7 = accumulate ? FloatVector.fromArray(F, c, cOff + 7 * cStride) : zero;
        FloatVector b7 = accumulate ? FloatVector.fromArray(F, c, cOff + 7 * cStride + LANES) : zero;
        FloatVector a8 = accumulate ? FloatVector.fromArray(F, c, cOff + 8 * cStride) : zero;
        FloatVector b8 = accumulate ? FloatVector.fromArray(F, c, cOff + 8 * cStride + LANES) : zero;
        FloatVector a9 = accumulate ? FloatVector.fromArray(F, c, cOff + 9 * cStride) : zero;
        FloatVector b9 = accumulate ? FloatVector.fromArray(F, c, cOff + 9 * cStride + LANES) : zero;
        FloatVector a10 = accumulate ? FloatVector.fromArray(F, c, cOff + 10 * cStride) : zero;
        FloatVector b10 = accumulate ? FloatVector.fromArray(F, c, cOff + 10 * cStride + LANES) : zero;
        FloatVector a11 = accumulate ? FloatVector.fromArray(F, c, cOff + 11 * cStride) : zero;
        FloatVector b11 = accumulate ? FloatVector.fromArray(F, c, cOff + 11 * cStride + LANES) : zero;
        int w1 = wOff + kLen;
        int w2 = wOff + 2 * kLen;
        int w3 = wOff + 3 * kLen;
        int w4 = wOff + 4 * kLen;
        int w5 = wOff + 5 * kLen;
        int w6 = wOff + 6 * kLen;
        int w7 = wOff + 7 * kLen;
        int w8 = wOff + 8 * kLen;
        int w9 = wOff + 9 * kLen;
        int w10 = wOff + 10 * kLen;
        int w11 = wOff + 11 * kLen;
        for (int k = 0; k < kLen; k++) {
            int xo = xOff + k * TOKEN_TILE;
            FloatVector x0 = FloatVector.fromArray(F, x, xo);
            FloatVector x1 = FloatVector.fromArray(F, x, xo + LANES);
            FloatVector v0 = FloatVector.broadcast(F, w[wOff + k]);
            a0 = v0.fma(x0, a0);
            b0 = v0.fma(x1, b0);
            FloatVector v1 = FloatVector.broadcast(F, w[w1 + k]);
            a1 = v1.fma(x0, a1);
            b1 = v1.fma(x1, b1);
            FloatVector v2 = FloatVector.broadcast(F, w[w2 + k]);
            a2 = v2.fma(x0, a2);
            b2 = v2.fma(x1, b2);
            FloatVector v3 = FloatVector.broadcast(F, w[w3 + k]);
            a3 = v3.fma(x0, a3);
            b3 = v3.fma(x1, b3);
            FloatVector v4 = FloatVector.broadcast(F, w[w4 + k]);
            a4 = v4.fma(x0, a4);
            b4 = v4.fma(x1, b4);
            FloatVector v5 = FloatVector.broadcast(F, w[w5 + k]);
            a5 = v5.fma(x0, a5);
            b5 = v5.fma(x1, b5);
            FloatVector v6 = FloatVector.broadcast(F, w[w6 + k]);
            a6 = v6.fma(x0, a6);
            b6 = v6.fma(x1, b6);
            FloatVector v7 = FloatVector.broadcast(F, w[w7 + k]);
            a7 = v7.fma(x0, a7);
            b7 = v7.fma(x1, b7);
            FloatVector v8 = FloatVector.broadcast(F, w[w8 + k]);
            a8 = v8.fma(x0, a8);
            b8 = v8.fma(x1, b8);
            FloatVector v9 = FloatVector.broadcast(F, w[w9 + k]);
            a9 = v9.fma(x0, a9);
            b9 = v9.fma(x1, b9);
            FloatVector v10 = FloatVector.broadcast(F, w[w10 + k]);
            a10 = v10.fma(x0, a10);
            b10 = v10.fma(x1, b10);
            FloatVector v11 = FloatVector.broadcast(F, w[w11 + k]);
            a11 = v11.fma(x0, a11);
            b11 = v11.fma(x1, b11);
        }
        a0.intoArray(c, cOff);
        b0.intoArray(c, cOff + LANES);
        a1.intoArray(c, cOff + cStride);
        b1.intoArray(c, cOff + cStride + LANES);
        a2.intoArray(c, cOff + 2 * cStride);
        b2.intoArray(c, cOff + 2 * cStride + LANES);
        a3.intoArray(c, cOff + 3 * cStride);
        b3.intoArray(c, cOff + 3 * cStride + LANES);
        a4.intoArray(c, cOff + 4 * cStride);
        b4.intoArray(c, cOff + 4 * cStride + LANES);
        a5.intoArray(c, cOff + 5 * cStride);
        b5.intoArray(c, cOff + 5 * cStride + LANES);
        a6.intoArray(c, cOff + 6 * cStride);
        b6.intoArray(c, cOff + 6 * cStride + LANES);
        a7.intoArray(c, cOff + 7 * cStride);
        b7.intoArray(c, cOff + 7 * cStride + LANES);
        a8.intoArray(c, cOff + 8 * cStride);
        b8.intoArray(c, cOff + 8 * cStride + LANES);
        a9.intoArray(c, cOff + 9 * cStride);
        b9.intoArray(c, cOff + 9 * cStride + LANES);
        a10.intoArray(c, cOff + 10 * cStride);
        b10.intoArray(c, cOff + 10 * cStride + LANES);
        a11.intoArray(c, cOff + 11 * cStride);
        b11.intoArray(c, cOff + 11 * cStride + LANES);
    }

    /**
     * As {@link #kernel12} with the 12 rows read straight from F32 weight memory (rows {@code r0 ..
     * r0 + 11}, {@code rowBytes} apart, little-endian): no copy, so the loads of the weights overlap
     * the FMAs instead of preceding them. Sums start from zero.
     */
    private static void kernel12F32(MemorySegment w, long wOff, long rowBytes, int kLen, float[] x, int xOff,
                                    float[] c, int cOff, int cStride) {
        FloatVector a0 = FloatVector.zero(F);
        FloatVector b0 = a0;
        FloatVector a1 = FloatVector.zero(F);
        FloatVector b1 = a1;
        FloatVector a2 = FloatVector.zero(F);
        FloatVector b2 = a2;
        FloatVector a3 = FloatVector.zero(F);
        FloatVector b3 = a3;
        FloatVector a4 = FloatVector.zero(F);
        FloatVector b4 = a4;
        FloatVector a5 = FloatVector.zero(F);
        FloatVector b5 = a5;
        FloatVector a6 = FloatVector.zero(F);
        FloatVector b6 = a6;
        FloatVector a7 = FloatVector.zero(F);
        FloatVector b7 = a7;
        FloatVector a8 = FloatVector.zero(F);
        FloatVector b8 = a8;
        FloatVector a9 = FloatVector.zero(F);
        FloatVector b9 = a9;
        FloatVector a10 = FloatVector.zero(F);
        FloatVector b10 = a10;
        FloatVector a11 = FloatVector.zero(F);
        FloatVector b11 = a11;
        long w0 = wOff;
        long w1 = wOff + rowBytes;
        long w2 = wOff + 2 * rowBytes;
        long w3 = wOff + 3 * rowBytes;
        long w4 = wOff + 4 * rowBytes;
        long w5 = wOff + 5 * rowBytes;
        long w6 = wOff + 6 * rowBytes;
        long w7 = wOff + 7 * rowBytes;
        long w8 = wOff + 8 * rowBytes;
        long w9 = wOff + 9 * rowBytes;
        long w10 = wOff + 10 * rowBytes;
        long w11 = wOff + 11 * rowBytes;
        for (int k = 0; k < kLen; k++) {
            int xo = xOff + k * TOKEN_TILE;
            long kb = (long) k * Float.BYTES;
            FloatVector x0 = FloatVector.fromArray(F, x, xo);
            FloatVector x1 = FloatVector.fromArray(F, x, xo + LANES);
            FloatVector v0 = FloatVector.broadcast(F, w.get(FLOAT_LE, w0 + kb));
            a0 = v0.fma(x0, a0);
            b0 = v0.fma(x1, b0);
            FloatVector v1 = FloatVector.broadcast(F, w.get(FLOAT_LE, w1 + kb));
            a1 = v1.fma(x0, a1);
            b1 = v1.fma(x1, b1);
            FloatVector v2 = FloatVector.broadcast(F, w.get(FLOAT_LE, w2 + kb));
            a2 = v2.fma(x0, a2);
            b2 = v2.fma(x1, b2);
            FloatVector v3 = FloatVector.broadcast(F, w.get(FLOAT_LE, w3 + kb));
            a3 = v3.fma(x0, a3);
            b3 = v3.fma(x1, b3);
            FloatVector v4 = FloatVector.broadcast(F, w.get(FLOAT_LE, w4 + kb));
            a4 = v4.fma(x0, a4);
            b4 = v4.fma(x1, b4);
            FloatVector v5 = FloatVector.broadcast(F, w.get(FLOAT_LE, w5 + kb));
            a5 = v5.fma(x0, a5);
            b5 = v5.fma(x1, b5);
            FloatVector v6 = FloatVector.broadcast(F, w.get(FLOAT_LE, w6 + kb));
            a6 = v6.fma(x0, a6);
            b6 = v6.fma(x1, b6);
            FloatVector v7 = FloatVector.broadcast(F, w.get(FLOAT_LE, w7 + kb));
            a7 = v7.fma(x0, a7);
            b7 = v7.fma(x1, b7);
            FloatVector v8 = FloatVector.broadcast(F, w.get(FLOAT_LE, w8 + kb));
            a8 = v8.fma(x0, a8);
            b8 = v8.fma(x1, b8);
            FloatVector v9 = FloatVector.broadcast(F, w.get(FLOAT_LE, w9 + kb));
            a9 = v9.fma(x0, a9);
            b9 = v9.fma(x1, b9);
            FloatVector v10 = FloatVector.broadcast(F, w.get(FLOAT_LE, w10 + kb));
            a10 = v10.fma(x0, a10);
            b10 = v10.fma(x1, b10);
            FloatVector v11 = FloatVector.broadcast(F, w.get(FLOAT_LE, w11 + kb));
            a11 = v11.fma(x0, a11);
            b11 = v11.fma(x1, b11);
        }
        a0.intoArray(c, cOff);
        b0.intoArray(c, cOff + LANES);
        a1.intoArray(c, cOff + cStride);
        b1.intoArray(c, cOff + cStride + LANES);
        a2.intoArray(c, cOff + 2 * cStride);
        b2.intoArray(c, cOff + 2 * cStride + LANES);
        a3.intoArray(c, cOff + 3 * cStride);
        b3.intoArray(c, cOff + 3 * cStride + LANES);
        a4.intoArray(c, cOff + 4 * cStride);
        b4.intoArray(c, cOff + 4 * cStride + LANES);
        a5.intoArray(c, cOff + 5 * cStride);
        b5.intoArray(c, cOff + 5 * cStride + LANES);
        a6.intoArray(c, cOff + 6 * cStride);
        b6.intoArray(c, cOff + 6 * cStride + LANES);
        a7.intoArray(c, cOff + 7 * cStride);
        b7.intoArray(c, cOff + 7 * cStride + LANES);
        a8.intoArray(c, cOff + 8 * cStride);
        b8.intoArray(c, cOff + 8 * cStride + LANES);
        a9.intoArray(c, cOff + 9 * cStride);
        b9.intoArray(c, cOff + 9 * cStride + LANES);
        a10.intoArray(c, cOff + 10 * cStride);
        b10.intoArray(c, cOff + 10 * cStride + LANES);
        a11.intoArray(c, cOff + 11 * cStride);
        b11.intoArray(c, cOff + 11 * cStride + LANES);
    }

    /** As {@link #kernel12} for 4 rows (the rows left over from 12-row tiles). */
    private static void kernel4(float[] w, int wOff, int kLen, float[] x, int xOff,
                                 float[] c, int cOff, int cStride, boolean accumulate) {
        FloatVector zero = FloatVector.zero(F);
        FloatVector a0 = accumulate ? FloatVector.fromArray(F, c, cOff) : zero;
        FloatVector b0 = accumulate ? FloatVector.fromArray(F, c, cOff + LANES) : zero;
        FloatVector a1 = accumulate ? FloatVector.fromArray(F, c, cOff + cStride) : zero;
        FloatVector b1 = accumulate ? FloatVector.fromArray(F, c, cOff + cStride + LANES) : zero;
        FloatVector a2 = accumulate ? FloatVector.fromArray(F, c, cOff + 2 * cStride) : zero;
        FloatVector b2 = accumulate ? FloatVector.fromArray(F, c, cOff + 2 * cStride + LANES) : zero;
        FloatVector a3 = accumulate ? FloatVector.fromArray(F, c, cOff + 3 * cStride) : zero;
        FloatVector b3 = accumulate ? FloatVector.fromArray(F, c, cOff + 3 * cStride + LANES) : zero;
        int w1 = wOff + kLen;
        int w2 = wOff + 2 * kLen;
        int w3 = wOff + 3 * kLen;
        for (int k = 0; k < kLen; k++) {
            int xo = xOff + k * TOKEN_TILE;
            FloatVector x0 = FloatVector.fromArray(F, x, xo);
            FloatVector x1 = FloatVector.fromArray(F, x, xo + LANES);
            FloatVector v0 = FloatVector.broadcast(F, w[wOff + k]);
            a0 = v0.fma(x0, a0);
            b0 = v0.fma(x1, b0);
            FloatVector v1 = FloatVector.broadcast(F, w[w1 + k]);
            a1 = v1.fma(x0, a1);
            b1 = v1.fma(x1, b1);
            FloatVector v2 = FloatVector.broadcast(F, w[w2 + k]);
            a2 = v2.fma(x0, a2);
            b2 = v2.fma(x1, b2);
            FloatVector v3 = FloatVector.broadcast(F, w[w3 + k]);
            a3 = v3.fma(x0, a3);
            b3 = v3.fma(x1, b3);
        }
        a0.intoArray(c, cOff);
        b0.intoArray(c, cOff + LANES);
        a1.intoArray(c, cOff + cStride);
        b1.intoArray(c, cOff + cStride + LANES);
        a2.intoArray(c, cOff + 2 * cStride);
        b2.intoArray(c, cOff + 2 * cStride + LANES);
        a3.intoArray(c, cOff + 3 * cStride);
        b3.intoArray(c, cOff + 3 * cStride + LANES);
    }

    /** As {@link #kernel12} for 1 row. */
    private static void kernel1(float[] w, int wOff, int kLen, float[] x, int xOff,
                                 float[] c, int cOff, int cStride, boolean accumulate) {
        FloatVector zero = FloatVector.zero(F);
        FloatVector a0 = accumulate ? FloatVector.fromArray(F, c, cOff) : zero;
        FloatVector b0 = accumulate ? FloatVector.fromArray(F, c, cOff + LANES) : zero;
        for (int k = 0; k < kLen; k++) {
            int xo = xOff + k * TOKEN_TILE;
            FloatVector x0 = FloatVector.fromArray(F, x, xo);
            FloatVector x1 = FloatVector.fromArray(F, x, xo + LANES);
            FloatVector v0 = FloatVector.broadcast(F, w[wOff + k]);
            a0 = v0.fma(x0, a0);
            b0 = v0.fma(x1, b0);
        }
        a0.intoArray(c, cOff);
        b0.intoArray(c, cOff + LANES);
    }

    /** Per-thread buffers, grown to the largest batch and then reused. */
    private static final class Scratch {
        final float[] weights = new float[ROW_BLOCK * K_BLOCK];
        final PackedActivations packed = new PackedActivations();
        private float[] sums = new float[0];
        private float[] rowTile = new float[0];

        float[] rowTile(int size) {
            if (rowTile.length < size) {
                rowTile = new float[size];
            }
            return rowTile;
        }

        float[] sums(int size) {
            if (sums.length < size) {
                sums = new float[size];
            }
            return sums;
        }
    }
}
