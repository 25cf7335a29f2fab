package io.tandem.engine.backend;

import io.tandem.engine.tensor.WeightMatrix;
import java.lang.foreign.MemorySegment;

/**
 * The kernels a forward pass calls. Activations are row-major {@code float[]} on the Java heap;
 * weights are {@link WeightMatrix} views; KV pages are read from off-heap {@link MemorySegment}s.
 * Shapes are written {@code [rows, cols]}; {@code n} is always the number of tokens in the batch.
 *
 * <p>Several engine threads may share a backend; the parallel kernels ({@code matmul*},
 * {@link #parallelFor}) serialize their dispatches, the others run on the caller. Kernels do not allocate in the steady
 * state. Every kernel has a scalar reference it is tested against ({@code ScalarKernels} in the
 * engine's test sources). Index arguments are not re-validated beyond what array and segment
 * accesses check: a bad index throws {@link IndexOutOfBoundsException}.
 */
public interface Backend extends AutoCloseable {

    /** Short name for logs and metrics, e.g. {@code cpu}. */
    String name();

    /** Degree of parallelism of the heavy kernels (threads that may run one matmul). */
    int threads();

    /**
     * {@code out[t, r] = sum_c w[r, c] * x[t, c]}.
     *
     * @param x   {@code [n, w.cols()]}
     * @param out {@code [n, w.rows()]}, overwritten
     */
    void matmul(WeightMatrix w, float[] x, float[] out, int n);

    /**
     * Two matmuls over the same input in one parallel dispatch (gate and up projections): as
     * {@code matmul(w0, x, out0, n); matmul(w1, x, out1, n)}. Both weights must have the same
     * {@code cols}.
     */
    void matmul2(WeightMatrix w0, WeightMatrix w1, float[] x, float[] out0, float[] out1, int n);

    /**
     * Three matmuls over the same input in one parallel dispatch (Q, K, V projections). All
     * weights must have the same {@code cols}.
     */
    void matmul3(WeightMatrix w0, WeightMatrix w1, WeightMatrix w2, float[] x,
                 float[] out0, float[] out1, float[] out2, int n);

    /**
     * RMSNorm per token: {@code out[t, i] = x[t, i] * (1 / sqrt(mean_i(x[t, i]^2) + eps)) * weight[i]}
     * (ggml {@code rms_norm} followed by {@code mul}). {@code out} may be {@code x}.
     *
     * @param x      {@code [n, dim]}
     * @param weight {@code [dim]}
     * @param out    {@code [n, dim]}
     */
    void rmsNorm(float[] x, float[] weight, float[] out, int n, int dim, float eps);

    /**
     * Rotary position embedding in place, angles as ggml computes them ({@link RopeStyle}).
     *
     * @param x           {@code [n, numHeads * headDim]}
     * @param rotaryDim   rotated elements per head, even, at most {@code headDim}
     * @param positions   {@code [n]} position of each token
     * @param theta       frequency base ({@code rope.freq_base}, e.g. 10000 or 500000)
     */
    default void rope(float[] x, int n, int numHeads, int headDim, int rotaryDim, int[] positions,
                      RopeStyle style, float theta) {
        rope(x, n, numHeads, headDim, rotaryDim, positions, style, theta, null);
    }

    /**
     * As {@link #rope(float[], int, int, int, int, int[], RopeStyle, float)} with per-pair
     * frequency divisors (GGUF tensor {@code rope_freqs.weight}, Llama 3.1+ long-context
     * scaling): pair {@code i}'s angle is divided by {@code freqFactors[i]}.
     *
     * @param freqFactors {@code [rotaryDim / 2]}, or {@code null} for none
     */
    void rope(float[] x, int n, int numHeads, int headDim, int rotaryDim, int[] positions,
              RopeStyle style, float theta, float[] freqFactors);

    /** SwiGLU in place: {@code gate[i] = silu(gate[i]) * up[i]}, {@code silu(v) = v / (1 + e^-v)}. */
    void swiglu(float[] gate, float[] up, int len);

    /** {@code acc[i] += x[i]} for {@code i in [0, len)} (residual connection). */
    void add(float[] acc, float[] x, int len);

    /** Softmax in place over {@code x[off, off + len)}, max-subtracted. */
    void softmax(float[] x, int off, int len);

    /** {@code sum_i a[aOff + i] * b[bOff + i]} over {@code len} elements. */
    float dot(float[] a, int aOff, float[] b, int bOff, int len);

    /** {@code y[yOff + i] += a * x[xOff + i]} over {@code len} elements. */
    void axpy(float a, float[] x, int xOff, float[] y, int yOff, int len);

    /** Dot of {@code q[qOff, qOff+len)} with {@code len} little-endian f32 at byte {@code kByteOff} of {@code k}. */
    float dot(float[] q, int qOff, MemorySegment k, long kByteOff, int len);

    /** {@code y[yOff + i] += a * v[i]}, {@code v} being {@code len} little-endian f32 at byte {@code vByteOff}. */
    void axpy(float a, MemorySegment v, long vByteOff, float[] y, int yOff, int len);

    /** As {@link #dot(float[], int, MemorySegment, long, int)} for f16 keys. */
    float dotF16(float[] q, int qOff, MemorySegment k, long kByteOff, int len);

    /** As {@link #axpy(float, MemorySegment, long, float[], int, int)} for f16 values. */
    void axpyF16(float a, MemorySegment v, long vByteOff, float[] y, int yOff, int len);

    /** Releases threads and device resources; idempotent. */
    /** Distinct {@code slot} values {@link #parallelFor} passes (size of per-slot scratch). */
    int parallelSlots();

    /**
     * Runs {@code task} over {@code [0, count)} cut into at most {@link #parallelSlots()} ranges;
     * each range gets its own slot index, so a task can use per-slot scratch. Returns when all are done.
     */
    void parallelFor(int count, RangeTask task);

    @Override
    void close();
}
