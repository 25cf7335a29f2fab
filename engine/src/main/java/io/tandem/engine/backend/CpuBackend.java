package io.tandem.engine.backend;

import io.tandem.engine.tensor.WeightMatrix;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The CPU backend: Java Vector API kernels, matrix products parallel over output rows on a fixed
 * {@link WorkerPool}. Element-wise kernels run on the caller (they are a small part of a step).
 */
public final class CpuBackend implements Backend {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    /** Below this many multiply-adds a product runs on the caller alone (dispatch costs more). */
    private static final long PARALLEL_MIN_MACS = 1 << 15;

    private final WorkerPool pool;

    /** @param threads compute threads, the caller included */
    public CpuBackend(int threads) {
        this.pool = new WorkerPool(threads);
    }

    @Override
    public int threads() {
        return pool.threads();
    }

    @Override
    public void matmul(WeightMatrix w, float[] x, float[] out, int n) {
        if ((long) w.rows() * w.cols() * n < PARALLEL_MIN_MACS) {
            w.matmulRows(x, n, out, 0, w.rows());
        } else {
            pool.run(w.rows(), (from, to, thread) -> w.matmulRows(x, n, out, from, to));
        }
    }

    @Override
    public void parallelFor(int count, RangeTask task) {
        pool.run(count, task);
    }

    @Override
    public void rmsNorm(float[] x, float[] weight, float[] out, int n, int dim, float eps) {
        for (int t = 0; t < n; t++) {
            int off = t * dim;
            double ss = 0;
            for (int i = 0; i < dim; i++) {
                ss += x[off + i] * x[off + i];
            }
            float scale = (float) (1.0 / Math.sqrt((float) (ss / dim) + eps));
            for (int i = 0; i < dim; i++) {
                out[off + i] = x[off + i] * scale * weight[i];
            }
        }
    }

    @Override
    public void rope(float[] x, int n, int numHeads, int headDim, int rotaryDim, int[] positions, RopeStyle style,
                     float theta) {
        // As ggml's rope: angle_i = pos · theta^(-2i/rotaryDim), accumulated in float.
        float thetaScale = (float) Math.pow(theta, -2.0 / rotaryDim);
        int half = rotaryDim / 2;
        for (int t = 0; t < n; t++) {
            float angle = positions[t];
            for (int i = 0; i < half; i++) {
                float c = (float) Math.cos(angle);
                float s = (float) Math.sin(angle);
                for (int h = 0; h < numHeads; h++) {
                    int base = t * numHeads * headDim + h * headDim;
                    int a = style == RopeStyle.NORMAL ? base + 2 * i : base + i;
                    int b = style == RopeStyle.NORMAL ? a + 1 : a + half;
                    float x0 = x[a];
                    float x1 = x[b];
                    x[a] = x0 * c - x1 * s;
                    x[b] = x0 * s + x1 * c;
                }
                angle *= thetaScale;
            }
        }
    }

    @Override
    public void swiglu(float[] gate, float[] up, int len) {
        for (int i = 0; i < len; i++) {
            float g = gate[i];
            gate[i] = g / (1f + (float) Math.exp(-g)) * up[i];
        }
    }

    @Override
    public void add(float[] acc, float[] x, int len) {
        int i = 0;
        for (int bound = S.loopBound(len); i < bound; i += S.length()) {
            FloatVector.fromArray(S, acc, i).add(FloatVector.fromArray(S, x, i)).intoArray(acc, i);
        }
        for (; i < len; i++) {
            acc[i] += x[i];
        }
    }

    @Override
    public void softmax(float[] x, int off, int len) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < len; i++) {
            max = Math.max(max, x[off + i]);
        }
        double sum = 0;
        for (int i = 0; i < len; i++) {
            float e = (float) Math.exp(x[off + i] - max);
            x[off + i] = e;
            sum += e;
        }
        float inv = (float) (1.0 / sum);
        for (int i = 0; i < len; i++) {
            x[off + i] *= inv;
        }
    }

    @Override
    public float dot(float[] q, int qOff, MemorySegment k, long kByteOff, int len) {
        int i = 0;
        float sum = 0f;
        if (len >= S.length()) {
            FloatVector acc = FloatVector.zero(S);
            for (int bound = S.loopBound(len); i < bound; i += S.length()) {
                acc = FloatVector.fromMemorySegment(S, k, kByteOff + 4L * i, ByteOrder.LITTLE_ENDIAN)
                        .fma(FloatVector.fromArray(S, q, qOff + i), acc);
            }
            sum = acc.reduceLanes(VectorOperators.ADD);
        }
        for (; i < len; i++) {
            sum += q[qOff + i] * k.get(ValueLayout.JAVA_FLOAT_UNALIGNED, kByteOff + 4L * i);
        }
        return sum;
    }

    @Override
    public void axpy(float a, MemorySegment v, long vByteOff, float[] y, int yOff, int len) {
        int i = 0;
        if (len >= S.length()) {
            FloatVector av = FloatVector.broadcast(S, a);
            for (int bound = S.loopBound(len); i < bound; i += S.length()) {
                FloatVector.fromMemorySegment(S, v, vByteOff + 4L * i, ByteOrder.LITTLE_ENDIAN)
                        .fma(av, FloatVector.fromArray(S, y, yOff + i)).intoArray(y, yOff + i);
            }
        }
        for (; i < len; i++) {
            y[yOff + i] += a * v.get(ValueLayout.JAVA_FLOAT_UNALIGNED, vByteOff + 4L * i);
        }
    }

    @Override
    public void close() {
        pool.close();
    }
}
