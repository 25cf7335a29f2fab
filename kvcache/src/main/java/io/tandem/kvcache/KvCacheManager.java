package io.tandem.kvcache;

/**
 * Allocation policy over a {@link BlockPool} (vLLM v1 {@code KVCacheManager}): finds the cached
 * prefix of a new sequence, allocates slots for the tokens a step will compute, caches blocks as
 * they fill, and frees a sequence's blocks tail-first. Keeps the prefix-cache counters vLLM
 * reports ({@code prefix_cache_queries} and {@code prefix_cache_hits}, in tokens). Engine thread
 * only.
 */
public final class KvCacheManager {
    private final BlockPool pool;
    private final int blockSize;
    private long prefixCacheQueries;
    private long prefixCacheHits;

    public KvCacheManager(BlockPool pool, int blockSize) {
        this.pool = pool;
        this.blockSize = blockSize;
    }

    public BlockPool blockPool() {
        return pool;
    }

    /**
     * Appends to the empty {@code table} the longest run of cached blocks matching
     * {@code blockHashes[0..]}, taking a reference on each. At most
     * {@code numTokens - 1} tokens can hit, so at least one token is left to compute (its logits
     * are needed) — vLLM's rule.
     *
     * @param blockHashes chained hashes of the prompt's full blocks ({@link BlockHasher})
     * @param numFullBlocks how many entries of {@code blockHashes} are valid
     * @param numTokens   the prompt's length
     * @return tokens whose KV is already computed: a multiple of the block size
     */
    public int allocateComputedBlocks(long[] blockHashes, int numFullBlocks, int numTokens, BlockTable table) {
        if (table.numBlocks() != 0) {
            throw new IllegalStateException("computed blocks are looked up for a new sequence only");
        }
        if (!pool.prefixCachingEnabled()) {
            return 0;
        }
        int maxBlocks = Math.min(numFullBlocks, (numTokens - 1) / blockSize);
        int hits = 0;
        while (hits < maxBlocks) {
            KvBlock b = pool.cachedBlock(blockHashes[hits]);
            if (b == null) {
                break;
            }
            pool.touch(b.blockId());
            table.append(b.blockId());
            hits++;
        }
        return hits * blockSize;
    }

    /**
     * Counts one admitted prompt's lookup: {@code numTokens} queried, {@code hitTokens} found (call
     * once per admitted sequence, not per retry).
     */
    public void recordPrefixCacheQuery(int numTokens, int hitTokens) {
        prefixCacheQueries += numTokens;
        prefixCacheHits += hitTokens;
    }

    /**
     * Makes {@code table} cover positions {@code [0, numTokens)}, allocating new blocks at its end.
     *
     * @return {@code false}, allocating nothing, if too few blocks are free
     */
    public boolean allocateSlots(BlockTable table, int numTokens) {
        int need = (numTokens + blockSize - 1) / blockSize - table.numBlocks();
        if (need <= 0) {
            return true;
        }
        int at = table.reserve(need);
        if (!pool.allocate(need, table.blockIds(), at)) {
            return false;
        }
        table.commit(need);
        return true;
    }

    /** Blocks that {@link #allocateSlots} would need to add for {@code numTokens} tokens. */
    public int blocksNeeded(BlockTable table, int numTokens) {
        return Math.max(0, (numTokens + blockSize - 1) / blockSize - table.numBlocks());
    }

    /**
     * Publishes the table's full blocks {@code [fromBlock, toBlock)} in the prefix cache under
     * {@code blockHashes[i]}, once their KV is computed.
     */
    public void cacheFullBlocks(BlockTable table, long[] blockHashes, int fromBlock, int toBlock) {
        for (int i = fromBlock; i < toBlock; i++) {
            pool.cacheFullBlock(table.blockId(i), blockHashes[i]);
        }
    }

    /**
     * Releases the table's blocks, last block first, so a sequence's tail is evicted before the
     * prefix other requests are likelier to share; then empties the table.
     */
    public void free(BlockTable table) {
        int[] ids = table.blockIds();
        for (int i = table.numBlocks() - 1; i >= 0; i--) {
            pool.free(ids, i, i + 1);
        }
        table.clear();
    }

    /** Prompt tokens looked up in the prefix cache so far. */
    public long prefixCacheQueries() {
        return prefixCacheQueries;
    }

    /** Prompt tokens found in the prefix cache so far. */
    public long prefixCacheHits() {
        return prefixCacheHits;
    }

    public int numFreeBlocks() {
        return pool.numFreeBlocks();
    }

    public int numBlocks() {
        return pool.numBlocks();
    }
}
