package io.tandem.control;

import io.tandem.engine.EngineStats;
import io.tandem.kvcache.CachedBlockHashes;
import io.tandem.proto.v1.LoadReport;
import io.tandem.proto.v1.WorkerRole;

/** An engine's published {@link EngineStats} ↔ {@code tandem.v1.LoadReport}. */
public final class LoadReports {
    private LoadReports() {}

    /** @param epoch the worker's start epoch (the prefill engine's; a decode worker's own) */
    public static LoadReport toProto(String workerId, long epoch, WorkerRole role, EngineStats stats) {
        LoadReport.Builder report = LoadReport.newBuilder()
                .setWorkerId(workerId)
                .setEpoch(epoch)
                .setRole(role)
                .setNumRunning(stats.numRunning())
                .setNumWaiting(stats.numWaiting())
                .setQueuedPrefillTokens(stats.numQueuedPrefillTokens())
                .setNumFreeBlocks(stats.numFreeBlocks())
                .setNumTotalBlocks(stats.numTotalBlocks())
                .setNumExported(stats.numExported())
                .setBlockSize(stats.cachedBlockHashes().blockSize());
        for (long hash : stats.cachedBlockHashes().toArray()) {
            report.addCachedBlockHashes(hash);
        }
        return report.build();
    }

    /** The report's {@code cached_block_hashes} and {@code block_size}, as the router matches prompts against them. */
    public static CachedBlockHashes cachedBlockHashes(LoadReport report) {
        int n = Math.min(report.getCachedBlockHashesCount(), CachedBlockHashes.MAX_HASHES);
        long[] hashes = new long[n];
        for (int i = 0; i < n; i++) {
            hashes[i] = report.getCachedBlockHashes(i);
        }
        return new CachedBlockHashes(Math.max(0, report.getBlockSize()), hashes);
    }
}
