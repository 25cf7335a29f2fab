package io.tandem.router;

/** The admission queue is full (HTTP 429 with Retry-After, gRPC {@code RESOURCE_EXHAUSTED}). */
public final class OverloadedException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final int retryAfterSeconds;

    public OverloadedException(String message, int retryAfterSeconds) {
        super(message);
        this.retryAfterSeconds = retryAfterSeconds;
    }

    /** Seconds the client should wait before retrying. */
    public int retryAfterSeconds() {
        return retryAfterSeconds;
    }
}
