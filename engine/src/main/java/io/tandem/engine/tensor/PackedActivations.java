package io.tandem.engine.tensor;

import static io.tandem.engine.tensor.KernelSpecies.LANES;

import java.util.Arrays;
import java.util.Objects;

/**
 * Activations {@code x [n, cols]} repacked for the prefill kernel: tokens in groups of
 * {@link #TOKEN_TILE}, each group stored column by column, so that column {@code k} of a group
 * (one float per token) is two contiguous vectors the kernel multiplies by one broadcast weight:
 *
 * <pre>
 *   panels[(g * cols + k) * TOKEN_TILE + j] = x[(g * TOKEN_TILE + j) * cols + k]
 *                                             (0 for the padding tokens j >= n - g * TOKEN_TILE)
 * </pre>
 *
 * <p>Packing moves {@code n * cols} floats once per matmul dispatch, against
 * {@code rows * n * cols} multiply-adds. The buffer grows to the largest batch packed and is
 * then reused, so the steady state allocates nothing. Not thread-safe while packing; read-only,
 * and safe to share, while matmuls run.
 */
public final class PackedActivations {
    /** Tokens per group: two float vectors (32 with AVX-512, 16 with AVX2). */
    public static final int TOKEN_TILE = 2 * LANES;
    /**
     * Batches of at least this many tokens go through the packed kernel, the last group padded
     * to {@link #TOKEN_TILE}; smaller ones use the row-tiled kernel instead. Three quarters of a
     * group: at Llama-3.2-1B layer shapes streaming from DRAM on 2 AVX-512 cores the padded packed
     * kernel is 1.5-2x faster at 24 tokens for F32, BF16 and Q8_0, and as fast (F32, BF16) or
     * slower (Q8_0, 0.66x) at 16 ({@code MatvecBench} section {@code layers}).
     */
    public static final int MIN_TOKENS = TOKEN_TILE * 3 / 4;
    /**
     * Rows of the packed kernel's full-size tile: a row range whose length is a multiple of this
     * runs in that tile alone (leftover rows go through narrower, slower tiles).
     */
    public static final int ROW_TILE = 12;

    private float[] panels = new float[0];
    private int tokens;
    private int cols;

    /**
     * Packs {@code x [n, cols]}, replacing what was packed before.
     *
     * @throws IllegalArgumentException  if {@code n} or {@code cols} is not positive, or the
     *                                   packed size exceeds an array
     * @throws IndexOutOfBoundsException if {@code x} is shorter than {@code n * cols}
     */
    public void pack(float[] x, int n, int cols) {
        if (n < 1 || cols < 1) {
            throw new IllegalArgumentException("need n >= 1 and cols >= 1, got n " + n + ", cols " + cols);
        }
        Objects.checkFromIndexSize(0, (long) n * cols, x.length);
        int groups = (n + TOKEN_TILE - 1) / TOKEN_TILE;
        long size = (long) groups * cols * TOKEN_TILE;
        if (size > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("packed activations [" + n + ", " + cols + "] exceed an array");
        }
        if (panels.length < size) {
            panels = new float[(int) size];
        }
        for (int g = 0; g < groups; g++) {
            int first = g * TOKEN_TILE;
            int count = Math.min(TOKEN_TILE, n - first);
            int base = first * cols;
            // column-major walk: TOKEN_TILE read streams (one per token row), one write stream
            for (int k = 0; k < cols; k++) {
                int dst = base + k * TOKEN_TILE;
                int src = base + k;
                for (int j = 0; j < count; j++) {
                    panels[dst + j] = x[src + j * cols];
                }
                if (count < TOKEN_TILE) {
                    Arrays.fill(panels, dst + count, dst + TOKEN_TILE, 0f);
                }
            }
        }
        this.tokens = n;
        this.cols = cols;
    }

    /** Tokens packed ({@code n}). */
    public int tokens() {
        return tokens;
    }

    /** Columns per token. */
    public int cols() {
        return cols;
    }

    /** Token groups: {@code ceil(n / TOKEN_TILE)}. */
    int groups() {
        return (tokens + TOKEN_TILE - 1) / TOKEN_TILE;
    }

    float[] panels() {
        return panels;
    }
}
