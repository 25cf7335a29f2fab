package io.tandem.router.worker;

import io.tandem.engine.DecodeRequest;
import io.tandem.engine.TokenSink;

/**
 * The router's handle on one decode worker: the in-process engine of {@code tandem serve}, or a
 * remote {@code tandem decode} process reached over gRPC. Methods never block the caller.
 */
public interface DecodeWorkerClient extends AutoCloseable {
    String workerId();

    /**
     * Continues a prefilled sequence; tokens and the end go to {@code sink} (see {@link TokenSink}),
     * on a worker or transport thread. The worker pulls the KV named by the request's handle and
     * releases it.
     *
     * @return {@code false} if the worker rejects the request at once; the sink is then never called
     */
    boolean decode(DecodeRequest request, TokenSink sink);

    /** Ends a sequence; its sink gets {@code onFinish(ABORT)}. */
    void cancel(String requestId);

    WorkerLoad load();

    @Override
    void close();
}
