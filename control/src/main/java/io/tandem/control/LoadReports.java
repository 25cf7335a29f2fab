package io.tandem.control;

import io.tandem.engine.EngineStats;
import io.tandem.proto.v1.LoadReport;
import io.tandem.proto.v1.WorkerRole;

/** An engine's published {@link EngineStats} → {@code tandem.v1.LoadReport}. */
public final class LoadReports {
    private LoadReports() {}

    /** @param epoch the worker's start epoch (the prefill engine's; a decode worker's own) */
    public static LoadReport toProto(String workerId, long epoch, WorkerRole role, EngineStats stats) {
        return LoadReport.newBuilder()
                .setWorkerId(workerId)
                .setEpoch(epoch)
                .setRole(role)
                .setNumRunning(stats.numRunning())
                .setNumWaiting(stats.numWaiting())
                .setQueuedPrefillTokens(stats.numQueuedPrefillTokens())
                .setNumFreeBlocks(stats.numFreeBlocks())
                .setNumTotalBlocks(stats.numTotalBlocks())
                .setNumExported(stats.numExported())
                .build();
    }
}
