package io.tandem.kvcache;

import org.agrona.collections.Long2ObjectHashMap;

/**
 * All physical KV blocks of one worker, created at start-up (vLLM v1 {@code BlockPool}).
 *
 * <p>Invariants: a block is in the free queue iff its {@code refCount} is 0; a block with a hash
 * is in the prefix-cache map under that hash until it is handed out again (evicted). Free blocks
 * keep their contents and hash so a later request with the same prefix can reuse them; the free
 * queue's head is evicted first. Only the engine thread calls this class.
 */
public final class BlockPool {
    private final KvBlock[] blocks;
    private final FreeKvCacheBlockQueue freeQueue = new FreeKvCacheBlockQueue();
    private final Long2ObjectHashMap<KvBlock> cachedBlocks = new Long2ObjectHashMap<>();
    private final boolean enablePrefixCaching;
    /** Bumped whenever a hash enters or leaves {@link #cachedBlocks} or a cached block enters or leaves the free queue. */
    private long prefixCacheVersion;

    /**
     * @param numBlocks           physical blocks, all free at start
     * @param enablePrefixCaching whether full blocks may be cached under their hash
     */
    public BlockPool(int numBlocks, boolean enablePrefixCaching) {
        if (numBlocks < 1) {
            throw new IllegalArgumentException("numBlocks must be >= 1, got " + numBlocks);
        }
        this.enablePrefixCaching = enablePrefixCaching;
        this.blocks = new KvBlock[numBlocks];
        for (int i = 0; i < numBlocks; i++) {
            blocks[i] = new KvBlock(i);
            freeQueue.append(blocks[i]);
        }
    }

    public int numBlocks() {
        return blocks.length;
    }

    public int numFreeBlocks() {
        return freeQueue.size();
    }

    public boolean prefixCachingEnabled() {
        return enablePrefixCaching;
    }

    /** Fraction of blocks in use, in [0, 1] (vLLM's {@code kv_cache_usage_perc}). */
    public double usage() {
        return 1.0 - (double) freeQueue.size() / blocks.length;
    }

    public KvBlock block(int blockId) {
        return blocks[blockId];
    }

    /**
     * Takes {@code n} blocks from the head of the free queue with {@code refCount} 1, evicting
     * their cached hashes, and writes their ids to {@code out[outOffset..]}.
     *
     * @return {@code false} (taking nothing) if fewer than {@code n} blocks are free
     */
    public boolean allocate(int n, int[] out, int outOffset) {
        if (n > freeQueue.size()) {
            return false;
        }
        for (int i = 0; i < n; i++) {
            KvBlock b = freeQueue.popLeft();
            evictCachedHash(b);
            b.refCount = 1;
            out[outOffset + i] = b.blockId();
        }
        return true;
    }

    /** The cached block holding the full block with this hash, or {@code null}. */
    public KvBlock cachedBlock(long blockHash) {
        return enablePrefixCaching ? cachedBlocks.get(blockHash) : null;
    }

    /**
     * Adds a reference to a block found in the prefix cache, taking it out of the free queue if
     * nobody used it.
     */
    public void touch(int blockId) {
        KvBlock b = blocks[blockId];
        if (b.refCount == 0) {
            freeQueue.remove(b);
            prefixCacheVersion++;
        }
        b.refCount++;
    }

    /**
     * Marks a full block as holding the tokens whose chained hash is {@code blockHash}. If another
     * block already holds that hash the first one stays the cached copy.
     */
    public void cacheFullBlock(int blockId, long blockHash) {
        if (!enablePrefixCaching || blockHash == KvBlock.NO_HASH) {
            return;
        }
        KvBlock b = blocks[blockId];
        if (b.blockHash != KvBlock.NO_HASH) {
            return;
        }
        if (cachedBlocks.putIfAbsent(blockHash, b) == null) {
            b.blockHash = blockHash;
            prefixCacheVersion++;
        }
    }

    /**
     * Drops one reference from each block, in the given order; blocks reaching 0 go to the tail
     * of the free queue in that order. Callers pass a sequence's blocks tail-first so its last
     * blocks are evicted before its shared prefix.
     *
     * @throws IllegalStateException on a double free ({@code refCount} already 0)
     */
    public void free(int[] blockIds, int from, int to) {
        for (int i = from; i < to; i++) {
            KvBlock b = blocks[blockIds[i]];
            if (b.refCount <= 0) {
                throw new IllegalStateException("double free of KV block " + b.blockId());
            }
            if (--b.refCount == 0) {
                freeQueue.append(b);
                if (b.blockHash != KvBlock.NO_HASH) {
                    prefixCacheVersion++;
                }
            }
        }
    }

    /** Forgets every cached hash (free blocks stay free). */
    public void resetPrefixCache() {
        for (KvBlock b : blocks) {
            b.blockHash = KvBlock.NO_HASH;
        }
        cachedBlocks.clear();
        prefixCacheVersion++;
    }

    /**
     * A counter that changes whenever a block hash is cached or evicted or a cached block is freed
     * or reused (what {@link #cachedBlockHashes} lists, and in which order), so a caller can skip
     * rebuilding a snapshot when nothing changed.
     */
    public long prefixCacheVersion() {
        return prefixCacheVersion;
    }

    /**
     * Writes up to {@code out.length} hashes of cached blocks to {@code out}, those likeliest to
     * stay longest first: blocks in use (by block id), then free blocks from the last to be evicted
     * to the next. Because a sequence frees its tail first, a prefix's leading blocks come before
     * its later ones, so a truncated list still holds whole leading runs of chained hashes.
     *
     * @return the number of hashes written
     */
    public int cachedBlockHashes(long[] out) {
        if (!enablePrefixCaching) {
            return 0;
        }
        int n = 0;
        for (int i = 0; i < blocks.length && n < out.length; i++) {
            KvBlock b = blocks[i];
            if (b.refCount > 0 && b.blockHash != KvBlock.NO_HASH) {
                out[n++] = b.blockHash;
            }
        }
        for (KvBlock b = freeQueue.last(); b != null && n < out.length; b = freeQueue.previous(b)) {
            if (b.blockHash != KvBlock.NO_HASH) {
                out[n++] = b.blockHash;
            }
        }
        return n;
    }

    /** Free block ids from next-to-evict to last; for tests and diagnostics. */
    public int[] freeBlockIdsInEvictionOrder() {
        return freeQueue.blockIds();
    }

    private void evictCachedHash(KvBlock b) {
        if (b.blockHash != KvBlock.NO_HASH) {
            cachedBlocks.remove(b.blockHash, b);
            b.blockHash = KvBlock.NO_HASH;
            prefixCacheVersion++;
        }
    }
}
