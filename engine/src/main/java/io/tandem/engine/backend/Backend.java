package io.tandem.engine.backend;

import io.tandem.engine.tensor.WeightMatrix;
import java.lang.foreign.MemorySegment;

/**
 * The kernels a Llama forward pass calls (DESIGN.md §5). Activations are row-major float arrays;
 * {@code n} is the number of tokens. The CPU backend implements them with the Vector API; a CUDA
 * backend will implement the same set. Safe to call from several engine threads (calls may be
 * serialized).
 */
public interface Backend extends AutoCloseable {
    /** Worker threads, the caller included; thread indices passed to {@link RangeTask} are below this. */
    int threads();

    /** {@code out[t, r] = Σ_c w[r, c] · x[t, c]}: x {@code [n, w.cols()]}, out {@code [n, w.rows()]}. */
    void matmul(WeightMatrix w, float[] x, float[] out, int n);

    /**
     * RMSNorm (Zhang & Sennrich 2019) per token: {@code out = x / sqrt(mean(x²) + eps) · weight};
     * x and out {@code [n, dim]} (may be the same array), weight {@code [dim]}.
     */
    void rmsNorm(float[] x, float[] weight, float[] out, int n, int dim, float eps);

    /**
     * Rotary embedding in place on x {@code [n, numHeads·headDim]}: the first {@code rotaryDim}
     * elements of each head rotate by {@code positions[t] · theta^(-2i/rotaryDim)}.
     */
    void rope(float[] x, int n, int numHeads, int headDim, int rotaryDim, int[] positions, RopeStyle style, float theta);

    /** SwiGLU (Shazeer 2020): {@code gate[i] = silu(gate[i]) · up[i]}, silu(x) = x / (1 + e^-x). */
    void swiglu(float[] gate, float[] up, int len);

    /** {@code acc[i] += x[i]}. */
    void add(float[] acc, float[] x, int len);

    /** In-place softmax of {@code x[off, off+len)}, max-subtracted. */
    void softmax(float[] x, int off, int len);

    /** {@code Σ q[qOff+i] · k[i]} with k read as {@code len} little-endian f32 at {@code kByteOff}. */
    float dot(float[] q, int qOff, MemorySegment k, long kByteOff, int len);

    /** {@code y[yOff+i] += a · v[i]} with v read as {@code len} little-endian f32 at {@code vByteOff}. */
    void axpy(float a, MemorySegment v, long vByteOff, float[] y, int yOff, int len);

    /** Runs {@code task} over {@code [0, count)} split across the worker threads; returns when all are done. */
    void parallelFor(int count, RangeTask task);

    /** Stops the worker threads. Idempotent. */
    @Override
    void close();
}
