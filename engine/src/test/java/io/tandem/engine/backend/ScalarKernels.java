package io.tandem.engine.backend;

import io.tandem.engine.tensor.ScalarDequantizer;
import io.tandem.engine.tensor.WeightMatrix;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Plain scalar references of every {@link Backend} kernel, written from the formulas (and, where
 * llama.cpp's arithmetic matters, from ggml-cpu's code) without vectors or threads. Backends are
 * tested against these; reductions accumulate in double so the reference is the more exact side.
 */
public final class ScalarKernels {
    private static final ValueLayout.OfFloat FLOAT_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort SHORT_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private ScalarKernels() {
    }

    /** {@code out[t, r] = sum_c w[r, c] * x[t, c]} in double; {@code magnitude[t, r] = sum_c |w[r, c] * x[t, c]|}. */
    public static double[] matmul(WeightMatrix w, float[] x, int n, double[] magnitude) {
        double[] out = new double[n * w.rows()];
        for (int r = 0; r < w.rows(); r++) {
            float[] row = ScalarDequantizer.row(w.type(), w.data(), r, w.cols());
            for (int t = 0; t < n; t++) {
                double s = 0;
                double m = 0;
                for (int c = 0; c < w.cols(); c++) {
                    double p = (double) row[c] * x[t * w.cols() + c];
                    s += p;
                    m += Math.abs(p);
                }
                out[t * w.rows() + r] = s;
                magnitude[t * w.rows() + r] = m;
            }
        }
        return out;
    }

    /** ggml {@code rms_norm} then {@code mul}: float squares, double sum, float mean and scale. */
    public static float[] rmsNorm(float[] x, float[] weight, int n, int dim, float eps) {
        float[] out = new float[n * dim];
        for (int t = 0; t < n; t++) {
            double sum = 0;
            for (int i = 0; i < dim; i++) {
                float v = x[t * dim + i];
                sum += v * v;
            }
            float mean = (float) (sum / dim);
            float scale = 1.0f / (float) Math.sqrt(mean + eps);
            for (int i = 0; i < dim; i++) {
                out[t * dim + i] = (x[t * dim + i] * scale) * weight[i];
            }
        }
        return out;
    }

    /** ggml-cpu rope, non-YaRN path, one pair at a time; returns a rotated copy. */
    public static float[] rope(float[] x, int n, int numHeads, int headDim, int rotaryDim, int[] positions,
                               RopeStyle style, float freqBase, float[] freqFactors) {
        float[] out = x.clone();
        float thetaScale = (float) Math.pow(freqBase, -2.0f / rotaryDim);
        for (int t = 0; t < n; t++) {
            for (int h = 0; h < numHeads; h++) {
                int head = (t * numHeads + h) * headDim;
                float theta = positions[t];
                for (int i0 = 0; i0 < rotaryDim; i0 += 2) {
                    float ff = freqFactors == null ? 1.0f : freqFactors[i0 / 2];
                    float angle = theta / ff;
                    float cos = (float) Math.cos(angle);
                    float sin = (float) Math.sin(angle);
                    int a = style == RopeStyle.NORMAL ? head + i0 : head + i0 / 2;
                    int b = style == RopeStyle.NORMAL ? head + i0 + 1 : head + i0 / 2 + rotaryDim / 2;
                    float x0 = x[a];
                    float x1 = x[b];
                    out[a] = x0 * cos - x1 * sin;
                    out[b] = x0 * sin + x1 * cos;
                    theta *= thetaScale;
                }
            }
        }
        return out;
    }

    /** {@code silu(gate) * up} with {@code silu(v) = v / (1 + e^-v)} in double. */
    public static float[] swiglu(float[] gate, float[] up, int len) {
        float[] out = gate.clone();
        for (int i = 0; i < len; i++) {
            double g = gate[i];
            out[i] = (float) (g / (1 + Math.exp(-g)) * up[i]);
        }
        return out;
    }

    /** Softmax of {@code x[off, off + len)} in double; other elements copied. */
    public static float[] softmax(float[] x, int off, int len) {
        float[] out = x.clone();
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < len; i++) {
            max = Math.max(max, x[off + i]);
        }
        double sum = 0;
        for (int i = 0; i < len; i++) {
            sum += Math.exp(x[off + i] - max);
        }
        for (int i = 0; i < len; i++) {
            out[off + i] = (float) (Math.exp(x[off + i] - max) / sum);
        }
        return out;
    }

    public static double dot(float[] a, int aOff, float[] b, int bOff, int len) {
        double s = 0;
        for (int i = 0; i < len; i++) {
            s += (double) a[aOff + i] * b[bOff + i];
        }
        return s;
    }

    /** The {@code len} little-endian f32 ({@code f16 = false}) or f16 values at {@code byteOff}. */
    public static float[] read(MemorySegment s, long byteOff, int len, boolean f16) {
        float[] out = new float[len];
        for (int i = 0; i < len; i++) {
            out[i] = f16 ? Float.float16ToFloat(s.get(SHORT_LE, byteOff + 2L * i)) : s.get(FLOAT_LE, byteOff + 4L * i);
        }
        return out;
    }
}
