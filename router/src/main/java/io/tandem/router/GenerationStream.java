package io.tandem.router;

/** A running request. */
public interface GenerationStream {
    /**
     * Cancels the request (client went away). Idempotent; its KV blocks are freed at the next
     * engine step and the listener gets no further calls after {@code onFinish(ABORT, …)}.
     */
    void cancel();
}
