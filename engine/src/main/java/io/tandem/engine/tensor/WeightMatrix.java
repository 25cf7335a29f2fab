package io.tandem.engine.tensor;

import java.lang.foreign.MemorySegment;

/**
 * A 2-D weight tensor {@code [rows = out features, cols = in features]} in ggml layout: row-major,
 * each row {@code cols} elements, quantized rows made of {@code cols/32} blocks (see
 * {@link GgmlType}). Backed by a {@link MemorySegment} it does not own (a memory-mapped GGUF file).
 * Thread-safe: read-only.
 */
public abstract sealed class WeightMatrix permits F32Matrix, F16Matrix, BF16Matrix, Q8_0Matrix, Q4_0Matrix {
    protected final MemorySegment data;
    protected final int rows;
    protected final int cols;
    protected final long rowBytes;

    protected WeightMatrix(GgmlType type, MemorySegment data, int rows, int cols) {
        this.data = data;
        this.rows = rows;
        this.cols = cols;
        this.rowBytes = type.byteSize(cols);
        long need = rowBytes * rows;
        if (data.byteSize() != need) {
            throw new IllegalArgumentException(type + " matrix [" + rows + ", " + cols + "] needs " + need
                    + " bytes, got " + data.byteSize());
        }
    }

    /**
     * Wraps {@code data} as a {@code [rows, cols]} matrix of {@code type}.
     *
     * @throws IllegalArgumentException if the size does not match or {@code cols} is not a
     *                                  multiple of the type's block size
     */
    public static WeightMatrix of(GgmlType type, MemorySegment data, int rows, int cols) {
        return switch (type) {
            case F32 -> new F32Matrix(data, rows, cols);
            case F16 -> new F16Matrix(data, rows, cols);
            case BF16 -> new BF16Matrix(data, rows, cols);
            case Q8_0 -> new Q8_0Matrix(data, rows, cols);
            case Q4_0 -> new Q4_0Matrix(data, rows, cols);
        };
    }

    public final int rows() {
        return rows;
    }

    public final int cols() {
        return cols;
    }

    public abstract GgmlType type();

    public final MemorySegment data() {
        return data;
    }

    /** {@code Σ_c w[row, c] · x[xOffset + c]}. */
    public abstract float dot(int row, float[] x, int xOffset);

    /** Writes row {@code row} as floats to {@code out[outOffset, outOffset + cols)}. */
    public abstract void dequantizeRow(int row, float[] out, int outOffset);

    /**
     * {@code out[t·rows + r] = dot(r, x, t·cols)} for tokens {@code t < n} and rows
     * {@code [rowStart, rowEnd)}. Each row's bytes stay in L1 while the tokens reuse them.
     */
    public void matmulRows(float[] x, int n, float[] out, int rowStart, int rowEnd) {
        for (int r = rowStart; r < rowEnd; r++) {
            for (int t = 0; t < n; t++) {
                out[t * rows + r] = dot(r, x, t * cols);
            }
        }
    }
}
