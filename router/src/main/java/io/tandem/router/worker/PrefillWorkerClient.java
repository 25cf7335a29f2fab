package io.tandem.router.worker;

import io.tandem.engine.PrefillCallback;
import io.tandem.engine.PrefillRequest;
import io.tandem.kvcache.KvHandle;

/**
 * The router's handle on one prefill worker: the in-process engine of {@code tandem serve}, or a
 * remote {@code tandem prefill} process reached over gRPC. Methods never block the caller.
 */
public interface PrefillWorkerClient extends WorkerClient {
    /** Stable id of the worker (the {@code workerId} of the KV handles it exports). */
    String workerId();

    /**
     * Starts a prefill. The callback is called exactly once, on a worker or transport thread.
     *
     * @return {@code false} if the worker rejects the request at once (its queue is full); the
     *         callback is then never called
     */
    boolean prefill(PrefillRequest request, PrefillCallback callback);

    /** Drops a queued or running prefill (its callback gets a {@link java.util.concurrent.CancellationException}). */
    void cancel(String requestId);

    /** Frees an exported handle no decode worker will pull (the first token ended the request). Idempotent. */
    void release(KvHandle handle);

    /** The latest known load. */
    WorkerLoad load();

    @Override
    void close();
}
