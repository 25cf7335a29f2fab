package io.tandem.engine.tensor;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * A 2-D weight tensor {@code [rows = out features, cols = in features]} in ggml layout over a
 * {@link MemorySegment}: row-major, row {@code r} starts at byte {@code r * rowBytes()}; a
 * quantized row is {@code cols / 32} consecutive blocks (layouts in {@link GgmlType}). Data is
 * little-endian. The segment may be a read-only slice of a memory-mapped GGUF file or an
 * Arena-allocated segment; this object only reads it and never outlives its owner's arena.
 *
 * <p>The kernels are the hot path of a Llama forward pass: {@link #matmulRows} with {@code n = 1}
 * is the decode matrix-vector product (memory-bandwidth bound, several rows are streamed at
 * once); with {@code n >= PackedActivations.MIN_TOKENS} the prefill matrix-matrix product
 * (compute bound: {@link PackedMatmul}, weights dequantized slice by slice into a per-thread
 * float scratch and multiplied against packed token groups); in between, small decode batches
 * ({@link TiledMatmul}).
 * Instances are immutable and safe to use from several threads at once, each thread working on
 * its own rows. No kernel allocates in the steady state.
 */
public abstract sealed class WeightMatrix
        permits F32WeightMatrix, F16WeightMatrix, BF16WeightMatrix, Q8_0WeightMatrix, Q4_0WeightMatrix {

    final MemorySegment data;
    final int rows;
    final int cols;
    final long rowBytes;

    WeightMatrix(MemorySegment data, int rows, int cols, long rowBytes) {
        this.data = data;
        this.rows = rows;
        this.cols = cols;
        this.rowBytes = rowBytes;
    }

    /**
     * Wraps {@code data} as a {@code [rows, cols]} weight of {@code type}.
     *
     * @throws IllegalArgumentException if a dimension is not positive, {@code cols} is not a
     *         multiple of the type's block size, or the segment's size is not exactly
     *         {@code type.byteSize(rows * cols)} bytes; the message names the mismatch
     */
    public static WeightMatrix of(GgmlType type, MemorySegment data, int rows, int cols) {
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(data, "data");
        if (rows <= 0 || cols <= 0) {
            throw new IllegalArgumentException(
                    "weight shape must be positive, got [" + rows + ", " + cols + "]");
        }
        if (cols % type.blockSize() != 0) {
            throw new IllegalArgumentException(type + " weight [" + rows + ", " + cols
                    + "]: cols must be a multiple of the block size " + type.blockSize());
        }
        long expected = type.byteSize((long) rows * cols);
        if (data.byteSize() != expected) {
            throw new IllegalArgumentException(type + " weight [" + rows + ", " + cols + "] needs "
                    + expected + " bytes, segment has " + data.byteSize());
        }
        return switch (type) {
            case F32 -> new F32WeightMatrix(data, rows, cols);
            case F16 -> new F16WeightMatrix(data, rows, cols);
            case BF16 -> new BF16WeightMatrix(data, rows, cols);
            case Q8_0 -> new Q8_0WeightMatrix(data, rows, cols);
            case Q4_0 -> new Q4_0WeightMatrix(data, rows, cols);
        };
    }

    /** Output features. */
    public final int rows() {
        return rows;
    }

    /** Input features. */
    public final int cols() {
        return cols;
    }

    /** Element type of {@link #data()}. */
    public abstract GgmlType type();

    /** The weight bytes, {@code rows * rowBytes()} long. */
    public final MemorySegment data() {
        return data;
    }

    /** Bytes of one row. */
    public final long rowBytes() {
        return rowBytes;
    }

    /**
     * Dot product of row {@code row} with {@code x[xOffset, xOffset + cols)}.
     *
     * @throws IndexOutOfBoundsException if {@code row} is not a row or {@code x} is too short
     */
    public abstract float dot(int row, float[] x, int xOffset);

    /**
     * Writes row {@code row} as floats to {@code out[outOffset, outOffset + cols)} with ggml's
     * dequantization ({@code dequantize_row_*}): bit-exact, the value of a quantized element is
     * {@code d * q} in float. Used for embedding lookup and by the prefill kernel.
     *
     * @throws IndexOutOfBoundsException if {@code row} is not a row or {@code out} is too short
     */
    public final void dequantizeRow(int row, float[] out, int outOffset) {
        Objects.checkFromIndexSize(outOffset, cols, out.length);
        dequantizeRange(row, 0, cols, out, outOffset);
    }

    /**
     * As {@link #dequantizeRow} for columns {@code [colStart, colStart + len)} of the row, written
     * to {@code out[outOffset, outOffset + len)}; {@code colStart} and {@code len} are multiples of
     * the type's block size (the prefill kernel dequantizes a row block by block of columns).
     * The row is checked; the column range and {@code out} are the caller's to get right.
     */
    abstract void dequantizeRange(int row, int colStart, int len, float[] out, int outOffset);

    /**
     * Batched kernel: {@code out[t * rows + r] = dot(r, x, t * cols)} for tokens
     * {@code t in [0, n)} and rows {@code r in [rowStart, rowEnd)}; other elements of {@code out}
     * are left as they are, so threads may fill disjoint row ranges of one {@code out}. With
     * {@code n >= PackedActivations.MIN_TOKENS} it packs {@code x} into a per-thread buffer first;
     * a parallel caller should pack once and call {@link #matmulRows(PackedActivations, float[], int, int)}.
     *
     * @param x   activations {@code [n, cols]}
     * @param n   tokens, at least 1
     * @param out results {@code [n, rows]}
     * @throws IndexOutOfBoundsException if the row range is not within {@code [0, rows]} or an
     *         array is shorter than its shape
     */
    public final void matmulRows(float[] x, int n, float[] out, int rowStart, int rowEnd) {
        Objects.checkFromToIndex(rowStart, rowEnd, rows);
        if (n < 1) {
            throw new IllegalArgumentException("n must be at least 1, got " + n);
        }
        Objects.checkFromIndexSize(0, (long) n * cols, x.length);
        Objects.checkFromIndexSize(0, (long) n * rows, out.length);
        if (n == 1) {
            matvec(x, out, rowStart, rowEnd);
        } else if (n < PackedActivations.MIN_TOKENS) {
            TiledMatmul.matmul(this, x, n, out, rowStart, rowEnd);
        } else {
            PackedActivations packed = PackedMatmul.threadScratch();
            packed.pack(x, n, cols);
            PackedMatmul.matmul(this, packed, out, rowStart, rowEnd);
        }
    }

    /**
     * As {@link #matmulRows(float[], int, float[], int, int)} for activations already packed by
     * {@link PackedActivations#pack} (a parallel caller packs once for all its row ranges). Uses
     * the prefill kernel whatever the token count.
     *
     * @throws IllegalArgumentException if {@code x} was packed for another {@code cols}
     * @throws IndexOutOfBoundsException if the row range is not within {@code [0, rows]} or
     *         {@code out} is shorter than {@code [x.tokens(), rows]}
     */
    public final void matmulRows(PackedActivations x, float[] out, int rowStart, int rowEnd) {
        Objects.checkFromToIndex(rowStart, rowEnd, rows);
        if (x.cols() != cols) {
            throw new IllegalArgumentException("activations packed for cols " + x.cols() + ", weight " + this);
        }
        Objects.checkFromIndexSize(0, (long) x.tokens() * rows, out.length);
        PackedMatmul.matmul(this, x, out, rowStart, rowEnd);
    }

    /**
     * Decode path ({@code n = 1}): {@code out[r] = dot(r, x, 0)} for rows in range. Types with a
     * multi-row kernel override this; bounds are checked by the caller.
     */
    void matvec(float[] x, float[] out, int rowStart, int rowEnd) {
        for (int r = rowStart; r < rowEnd; r++) {
            out[r] = dot(r, x, 0);
        }
    }

    final long rowOffset(int row) {
        return Objects.checkIndex(row, rows) * rowBytes;
    }

    @Override
    public String toString() {
        return type() + "[" + rows + ", " + cols + "]";
    }
}
