package io.tandem.engine.tensor;

import static io.tandem.engine.tensor.KernelSpecies.F;
import static io.tandem.engine.tensor.KernelSpecies.LANES;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * The small-batch kernel ({@code 1 < n < PackedActivations.MIN_TOKENS}: a decode step of a few
 * sequences) behind {@link WeightMatrix#matmulRows}, for every type; larger batches use
 * {@link PackedMatmul}.
 *
 * <p>Rows are dequantized {@value #ROW_TILE} at a time into a per-thread float scratch
 * {@code [ROW_TILE, cols]}, then multiplied against {@value #TOKEN_TILE} tokens at a time with
 * a register-blocked 4x4 kernel: 16 vector accumulators, 8 loads per 16 FMAs, so the loop is
 * FMA-bound rather than load-bound. Tokens are processed in chunks of about
 * {@value #X_CHUNK_FLOATS} floats of {@code x} so that a chunk stays in L2 while all rows pass
 * over it; each weight row is dequantized once per chunk.
 */
final class TiledMatmul {
    static final int ROW_TILE = 4;
    static final int TOKEN_TILE = 4;
    /** Floats of {@code x} (512 KiB) swept by every row tile before moving to the next tokens. */
    static final int X_CHUNK_FLOATS = 1 << 17;

    private static final ThreadLocal<float[]> SCRATCH = ThreadLocal.withInitial(() -> new float[0]);

    private TiledMatmul() {
    }

    static void matmul(WeightMatrix w, float[] x, int n, float[] out, int rowStart, int rowEnd) {
        int cols = w.cols;
        int rows = w.rows;
        float[] tile = scratch(ROW_TILE * cols);
        int chunk = Math.max(TOKEN_TILE, X_CHUNK_FLOATS / cols / TOKEN_TILE * TOKEN_TILE);
        for (int t0 = 0; t0 < n; t0 += chunk) {
            int t1 = Math.min(n, t0 + chunk);
            for (int r0 = rowStart; r0 < rowEnd; r0 += ROW_TILE) {
                int tileRows = Math.min(ROW_TILE, rowEnd - r0);
                for (int i = 0; i < tileRows; i++) {
                    w.dequantizeRow(r0 + i, tile, i * cols);
                }
                int t = t0;
                if (tileRows == ROW_TILE) {
                    for (; t + TOKEN_TILE <= t1; t += TOKEN_TILE) {
                        kernel4x4(tile, cols, x, t, out, rows, r0);
                    }
                }
                for (; t < t1; t++) {
                    for (int i = 0; i < tileRows; i++) {
                        out[t * rows + r0 + i] = dot(tile, i * cols, x, t * cols, cols);
                    }
                }
            }
        }
    }

    private static float[] scratch(int size) {
        float[] s = SCRATCH.get();
        if (s.length < size) {
            s = new float[size];
            SCRATCH.set(s);
        }
        return s;
    }

    /** {@code out[(t+j)*rows + r0+i] = w[i] . x[t+j]} for i, j in [0, 4). */
    private static void kernel4x4(float[] w, int cols, float[] x, int t, float[] out, int rows, int r0) {
        FloatVector a00 = FloatVector.zero(F), a01 = a00, a02 = a00, a03 = a00;
        FloatVector a10 = a00, a11 = a00, a12 = a00, a13 = a00;
        FloatVector a20 = a00, a21 = a00, a22 = a00, a23 = a00;
        FloatVector a30 = a00, a31 = a00, a32 = a00, a33 = a00;
        int w1 = cols;
        int w2 = 2 * cols;
        int w3 = 3 * cols;
        int x0 = t * cols;
        int x1 = x0 + cols;
        int x2 = x1 + cols;
        int x3 = x2 + cols;
        int bound = F.loopBound(cols);
        int k = 0;
        for (; k < bound; k += LANES) {
            FloatVector v0 = FloatVector.fromArray(F, w, k);
            FloatVector v1 = FloatVector.fromArray(F, w, w1 + k);
            FloatVector v2 = FloatVector.fromArray(F, w, w2 + k);
            FloatVector v3 = FloatVector.fromArray(F, w, w3 + k);
            FloatVector xv = FloatVector.fromArray(F, x, x0 + k);
            a00 = v0.fma(xv, a00);
            a10 = v1.fma(xv, a10);
            a20 = v2.fma(xv, a20);
            a30 = v3.fma(xv, a30);
            xv = FloatVector.fromArray(F, x, x1 + k);
            a01 = v0.fma(xv, a01);
            a11 = v1.fma(xv, a11);
            a21 = v2.fma(xv, a21);
            a31 = v3.fma(xv, a31);
            xv = FloatVector.fromArray(F, x, x2 + k);
            a02 = v0.fma(xv, a02);
            a12 = v1.fma(xv, a12);
            a22 = v2.fma(xv, a22);
            a32 = v3.fma(xv, a32);
            xv = FloatVector.fromArray(F, x, x3 + k);
            a03 = v0.fma(xv, a03);
            a13 = v1.fma(xv, a13);
            a23 = v2.fma(xv, a23);
            a33 = v3.fma(xv, a33);
        }
        int o0 = t * rows + r0;
        int o1 = o0 + rows;
        int o2 = o1 + rows;
        int o3 = o2 + rows;
        out[o0] = a00.reduceLanes(VectorOperators.ADD) + tail(w, 0, x, x0, k, cols);
        out[o0 + 1] = a10.reduceLanes(VectorOperators.ADD) + tail(w, w1, x, x0, k, cols);
        out[o0 + 2] = a20.reduceLanes(VectorOperators.ADD) + tail(w, w2, x, x0, k, cols);
        out[o0 + 3] = a30.reduceLanes(VectorOperators.ADD) + tail(w, w3, x, x0, k, cols);
        out[o1] = a01.reduceLanes(VectorOperators.ADD) + tail(w, 0, x, x1, k, cols);
        out[o1 + 1] = a11.reduceLanes(VectorOperators.ADD) + tail(w, w1, x, x1, k, cols);
        out[o1 + 2] = a21.reduceLanes(VectorOperators.ADD) + tail(w, w2, x, x1, k, cols);
        out[o1 + 3] = a31.reduceLanes(VectorOperators.ADD) + tail(w, w3, x, x1, k, cols);
        out[o2] = a02.reduceLanes(VectorOperators.ADD) + tail(w, 0, x, x2, k, cols);
        out[o2 + 1] = a12.reduceLanes(VectorOperators.ADD) + tail(w, w1, x, x2, k, cols);
        out[o2 + 2] = a22.reduceLanes(VectorOperators.ADD) + tail(w, w2, x, x2, k, cols);
        out[o2 + 3] = a32.reduceLanes(VectorOperators.ADD) + tail(w, w3, x, x2, k, cols);
        out[o3] = a03.reduceLanes(VectorOperators.ADD) + tail(w, 0, x, x3, k, cols);
        out[o3 + 1] = a13.reduceLanes(VectorOperators.ADD) + tail(w, w1, x, x3, k, cols);
        out[o3 + 2] = a23.reduceLanes(VectorOperators.ADD) + tail(w, w2, x, x3, k, cols);
        out[o3 + 3] = a33.reduceLanes(VectorOperators.ADD) + tail(w, w3, x, x3, k, cols);
    }

    /** Scalar remainder {@code sum_{k in [from, cols)} w[wOff+k] * x[xOff+k]} (empty when cols % LANES == 0). */
    private static float tail(float[] w, int wOff, float[] x, int xOff, int from, int cols) {
        float s = 0f;
        for (int k = from; k < cols; k++) {
            s += w[wOff + k] * x[xOff + k];
        }
        return s;
    }

    /**
     * One row times one token in the order of {@link #kernel4x4}: one vector accumulator over the
     * columns, reduced, plus the scalar remainder; so an output does not depend on whether it
     * fell in a full 4x4 tile, i.e. on the batch size or on the token's index in the batch.
     */
    private static float dot(float[] w, int wOff, float[] x, int xOff, int cols) {
        FloatVector acc = FloatVector.zero(F);
        int bound = F.loopBound(cols);
        int k = 0;
        for (; k < bound; k += LANES) {
            acc = FloatVector.fromArray(F, w, wOff + k).fma(FloatVector.fromArray(F, x, xOff + k), acc);
        }
        return acc.reduceLanes(VectorOperators.ADD) + tail(w, wOff, x, xOff, k, cols);
    }
}
