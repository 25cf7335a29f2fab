package io.tandem.router.worker;

import io.tandem.engine.EngineStats;
import io.tandem.engine.PrefillCallback;
import io.tandem.engine.PrefillEngine;
import io.tandem.engine.PrefillRequest;
import io.tandem.kvcache.KvHandle;

/** A prefill engine in the router's own JVM. Does not own the engine: {@link #close()} leaves it running. */
public final class LocalPrefillWorker implements PrefillWorkerClient {
    private final PrefillEngine engine;

    public LocalPrefillWorker(PrefillEngine engine) {
        this.engine = engine;
    }

    @Override
    public String workerId() {
        return engine.workerId();
    }

    @Override
    public boolean prefill(PrefillRequest request, PrefillCallback callback) {
        return engine.submit(request, callback);
    }

    @Override
    public void cancel(String requestId) {
        engine.cancel(requestId);
    }

    @Override
    public void release(KvHandle handle) {
        engine.release(handle.leaseId());
    }

    @Override
    public WorkerLoad load() {
        EngineStats s = engine.stats();
        return new WorkerLoad(true, s.numRunning(), s.numWaiting(), s.numQueuedPrefillTokens(), s.numFreeBlocks(), s.numTotalBlocks());
    }

    @Override
    public void close() {}
}
