package io.tandem.engine;

import io.tandem.kvcache.CachedBlockHashes;

/**
 * A snapshot of an engine's load, published by its thread after every step.
 *
 * @param numRunning     sequences being computed (decode) or prefilled (prefill)
 * @param numWaiting     sequences admitted but waiting for blocks or a step
 * @param numExported    prefill only: sequences whose KV is leased to a decode worker
 * @param numFreeBlocks  free KV blocks
 * @param numTotalBlocks all KV blocks
 * @param prefixCacheQueries prompt tokens looked up in the prefix cache (cumulative)
 * @param prefixCacheHits    prompt tokens found there (cumulative)
 * @param numPreemptions     sequences preempted for lack of KV blocks (cumulative)
 * @param numQueuedPrefillTokens prefill only: prompt tokens admitted whose K/V is not computed yet
 *                           (the prefill queue's length in work, for load-aware routing)
 * @param cachedBlockHashes  prefill only: the block hashes in the prefix cache, bounded
 *                           ({@link CachedBlockHashes#MAX_HASHES}), for prefix-aware routing;
 *                           {@link CachedBlockHashes#NONE} where not reported
 */
public record EngineStats(int numRunning, int numWaiting, int numExported, int numFreeBlocks, int numTotalBlocks,
                          long prefixCacheQueries, long prefixCacheHits, long numPreemptions, long numQueuedPrefillTokens,
                          CachedBlockHashes cachedBlockHashes) {
    public EngineStats {
        java.util.Objects.requireNonNull(cachedBlockHashes, "cachedBlockHashes");
    }

    /** Stats that report no cached block hashes (decode engines). */
    public EngineStats(int numRunning, int numWaiting, int numExported, int numFreeBlocks, int numTotalBlocks,
                       long prefixCacheQueries, long prefixCacheHits, long numPreemptions, long numQueuedPrefillTokens) {
        this(numRunning, numWaiting, numExported, numFreeBlocks, numTotalBlocks, prefixCacheQueries, prefixCacheHits,
                numPreemptions, numQueuedPrefillTokens, CachedBlockHashes.NONE);
    }

    /** Fraction of KV blocks in use, in [0, 1]. */
    public double kvCacheUsage() {
        return 1.0 - (double) numFreeBlocks / numTotalBlocks;
    }
}
