package io.tandem.router.worker;

import io.tandem.engine.DecodeRequest;
import io.tandem.engine.TokenSink;
import io.tandem.kvcache.PageSummaries;

/**
 * The router's handle on one decode worker: the in-process engine of {@code tandem serve}, or a
 * remote {@code tandem decode} process reached over gRPC. Methods never block the caller.
 */
public interface DecodeWorkerClient extends WorkerClient {
    String workerId();

    /**
     * Continues a prefilled sequence; tokens and the end go to {@code sink} (see {@link TokenSink}),
     * on a worker or transport thread. Once the worker has accepted the request, pulling the KV
     * named by the request's handle and releasing it are the worker's job.
     *
     * @param notAccepted run at most once, before the sink hears the end, if the request ended
     *                    before the worker accepted it (unreachable, refused, cancelled or timed
     *                    out first): the handle is then still the caller's to release
     * @return {@code false} if the worker rejects the request at once; neither the sink nor
     *         {@code notAccepted} is then called, and the handle is the caller's
     */
    boolean decode(DecodeRequest request, TokenSink sink, Runnable notAccepted);

    /**
     * Brings the first token of a request sent with {@link DecodeRequest#FIRST_TOKEN_PENDING} (an
     * early handle, its prefill still computing), with the page summaries of the prefill's result
     * (the early handle has none; null if the result has none either). Ignored for a request that
     * has ended.
     */
    void provideFirstToken(String requestId, int token, PageSummaries pageSummaries);

    /** Ends a sequence; its sink gets {@code onFinish(ABORT)}. */
    void cancel(String requestId);

    WorkerLoad load();

    @Override
    void close();
}
