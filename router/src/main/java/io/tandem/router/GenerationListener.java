package io.tandem.router;

import io.tandem.engine.FinishReason;

/**
 * Receives one request's output. The router calls it from its own threads, never two calls
 * for the same request at once, in this order: {@link #onOutput} zero or more times, then
 * exactly one of {@link #onFinish} or {@link #onError}. Implementations must not block (they
 * write to a Netty channel or a gRPC stream and return).
 */
public interface GenerationListener {
    /**
     * New tokens and the text they complete. {@code textDelta} can be empty while a multi-byte
     * UTF-8 character or a possible stop string is still being held back.
     */
    void onOutput(int[] tokenIds, String textDelta);

    /** The request ended normally. {@code usage} counts prompt and generated tokens. */
    void onFinish(FinishReason reason, Usage usage);

    /** The request failed after it was admitted (e.g. a KV hand-off failed). Terminal. */
    void onError(Throwable error);
}
