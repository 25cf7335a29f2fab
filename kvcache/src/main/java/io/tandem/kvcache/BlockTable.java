package io.tandem.kvcache;

import java.util.Arrays;

/**
 * A sequence's logical → physical block ids, append-only while the sequence runs. Logical block
 * {@code i} holds the tokens at positions {@code [i·blockSize, (i+1)·blockSize)}.
 */
public final class BlockTable {
    private int[] blockIds;
    private int numBlocks;

    /** @param capacity blocks to reserve room for (grows if exceeded) */
    public BlockTable(int capacity) {
        this.blockIds = new int[Math.max(1, capacity)];
    }

    public int numBlocks() {
        return numBlocks;
    }

    /** Physical id of logical block {@code i}. */
    public int blockId(int i) {
        if (i >= numBlocks) {
            throw new IndexOutOfBoundsException("logical block " + i + " of " + numBlocks);
        }
        return blockIds[i];
    }

    /** The backing array; valid entries are {@code [0, numBlocks())}. Do not modify. */
    public int[] blockIds() {
        return blockIds;
    }

    /** Appends one physical block id. */
    public void append(int blockId) {
        ensureCapacity(numBlocks + 1);
        blockIds[numBlocks++] = blockId;
    }

    /**
     * Makes room for {@code n} more ids and returns the offset to write them at; call
     * {@link #commit(int)} after writing.
     */
    public int reserve(int n) {
        ensureCapacity(numBlocks + n);
        return numBlocks;
    }

    /** Adds {@code n} ids written after {@link #reserve(int)}. */
    public void commit(int n) {
        numBlocks += n;
    }

    /** Forgets every id (after the blocks were freed). */
    public void clear() {
        numBlocks = 0;
    }

    /** A copy of the valid ids. */
    public int[] toArray() {
        return Arrays.copyOf(blockIds, numBlocks);
    }

    private void ensureCapacity(int n) {
        if (n > blockIds.length) {
            blockIds = Arrays.copyOf(blockIds, Math.max(n, blockIds.length * 2));
        }
    }
}
