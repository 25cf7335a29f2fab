package io.tandem.router.worker;

import io.tandem.kvcache.CachedBlockHashes;
import java.util.Objects;

/**
 * A worker's load as the router sees it (the in-process engine's latest stats, or a remote
 * worker's last load report), used to route and to report.
 *
 * @param healthy             whether the worker takes requests
 * @param numRunning          sequences being computed
 * @param numWaiting          sequences admitted and waiting
 * @param queuedPrefillTokens prompt tokens admitted but not yet computed (prefill workers)
 * @param numFreeBlocks       free KV blocks
 * @param numTotalBlocks      all KV blocks
 * @param cachedBlockHashes   the block hashes in the worker's prefix cache (prefill workers;
 *                            {@link CachedBlockHashes#NONE} otherwise)
 * @param asOfNanos           {@link System#nanoTime()} before which the worker took the numbers:
 *                            work that ended after it may still be counted in them
 */
public record WorkerLoad(boolean healthy, int numRunning, int numWaiting, long queuedPrefillTokens, int numFreeBlocks,
                         int numTotalBlocks, CachedBlockHashes cachedBlockHashes, long asOfNanos) {
    public WorkerLoad {
        Objects.requireNonNull(cachedBlockHashes, "cachedBlockHashes");
    }

    /** The load of a healthy in-process engine, from its published stats. */
    public static WorkerLoad of(io.tandem.engine.EngineStats s) {
        return new WorkerLoad(true, s.numRunning(), s.numWaiting(), s.numQueuedPrefillTokens(), s.numFreeBlocks(),
                s.numTotalBlocks(), s.cachedBlockHashes(), System.nanoTime());
    }

    /** The load of a worker that does not answer. */
    public static final WorkerLoad UNREACHABLE = new WorkerLoad(false, 0, 0, 0, 0, 0, CachedBlockHashes.NONE, 0);
}
