package io.tandem.kvcache;

import java.util.Arrays;

/**
 * An immutable snapshot of the block hashes ({@link BlockHasher}) in a worker's prefix cache, as
 * the worker publishes it for prefix-aware routing ({@code LoadReport.cached_block_hashes}): at
 * most {@link #MAX_HASHES}, those the worker will keep longest first ({@link
 * BlockPool#cachedBlockHashes}). A hash is the 64-bit key the worker caches under: the first 8
 * bytes of the block's SHA-256, big-endian, so a router computing {@link BlockHasher} hashes of a
 * prompt with the same block size, model id and cache salt gets the same values.
 *
 * <p>Safe to share between threads.
 */
public final class CachedBlockHashes {
    /**
     * Most hashes a snapshot holds: 4,096 blocks (65,536 tokens at 16 tokens a block), about 36 KB
     * on the wire per load report. A longer cache is reported by its longest-lived blocks.
     */
    public static final int MAX_HASHES = 4096;

    /** No block cached (or a worker that does not say), block size unknown. */
    public static final CachedBlockHashes NONE = new CachedBlockHashes(0, new long[0]);

    private final int blockSize;
    private final long[] hashes;
    private final long[] sorted;

    /**
     * @param blockSize tokens per block the hashes were computed over ({@code 0} = unknown)
     * @param hashes    block hashes, copied; at most {@link #MAX_HASHES}
     * @throws IllegalArgumentException if {@code blockSize < 0} or there are too many hashes
     */
    public CachedBlockHashes(int blockSize, long[] hashes) {
        if (blockSize < 0) {
            throw new IllegalArgumentException("blockSize must be >= 0, got " + blockSize);
        }
        if (hashes.length > MAX_HASHES) {
            throw new IllegalArgumentException("at most " + MAX_HASHES + " cached block hashes, got " + hashes.length);
        }
        this.blockSize = blockSize;
        this.hashes = hashes.clone();
        this.sorted = hashes.clone();
        Arrays.sort(sorted);
    }

    /** Tokens per block ({@code 0} = unknown: the snapshot matches nothing). */
    public int blockSize() {
        return blockSize;
    }

    public int size() {
        return hashes.length;
    }

    /** The hashes in the worker's order (longest-lived first), as a new array. */
    public long[] toArray() {
        return hashes.clone();
    }

    /** Whether the worker reported this block hash (O(log n)). */
    public boolean contains(long blockHash) {
        return Arrays.binarySearch(sorted, blockHash) >= 0;
    }

    /** Equal if the block size and the hashes, in order, are. */
    @Override
    public boolean equals(Object o) {
        return o instanceof CachedBlockHashes c && c.blockSize == blockSize && Arrays.equals(c.hashes, hashes);
    }

    @Override
    public int hashCode() {
        return 31 * blockSize + Arrays.hashCode(hashes);
    }

    @Override
    public String toString() {
        return "CachedBlockHashes[blockSize=" + blockSize + ", size=" + hashes.length + "]";
    }
}
