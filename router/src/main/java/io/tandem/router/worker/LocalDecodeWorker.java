package io.tandem.router.worker;

import io.tandem.engine.DecodeEngine;
import io.tandem.engine.DecodeRequest;
import io.tandem.engine.TokenSink;
import io.tandem.kvcache.PageSummaries;

/**
 * A decode engine in the router's own JVM. The engine takes a request (and its handle) when it is
 * queued, so {@code notAccepted} is never run. Does not own the engine: {@link #close()} leaves it
 * running.
 */
public final class LocalDecodeWorker implements DecodeWorkerClient {
    private final String workerId;
    private final DecodeEngine engine;

    public LocalDecodeWorker(String workerId, DecodeEngine engine) {
        this.workerId = workerId;
        this.engine = engine;
    }

    @Override
    public String workerId() {
        return workerId;
    }

    @Override
    public boolean decode(DecodeRequest request, TokenSink sink, Runnable notAccepted) {
        return engine.submit(request, sink);
    }

    @Override
    public void provideFirstToken(String requestId, int token, PageSummaries pageSummaries) {
        if (!engine.provideFirstToken(requestId, token, pageSummaries)) {
            engine.cancel(requestId); // a sequence whose token cannot reach it must not wait for it
        }
    }

    @Override
    public void cancel(String requestId) {
        engine.cancel(requestId);
    }

    @Override
    public WorkerLoad load() {
        return WorkerLoad.of(engine.stats());
    }

    @Override
    public void close() {}
}
