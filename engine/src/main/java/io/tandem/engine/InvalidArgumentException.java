package io.tandem.engine;

/**
 * A request field holds a value Tandem cannot serve. Carries the field name (as the client
 * spelled it, e.g. {@code max_tokens}) so the server edge can map it to an OpenAI error object
 * ({@code param}) or a gRPC {@code INVALID_ARGUMENT} status.
 */
public final class InvalidArgumentException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;
    private final String param;

    /**
     * @param param   the offending field, e.g. {@code "temperature"}; may be {@code null} when the
     *                request as a whole is malformed
     * @param message what is wrong, naming the value
     */
    public InvalidArgumentException(String param, String message) {
        super(message);
        this.param = param;
    }

    /** The offending field, or {@code null}. */
    public String param() {
        return param;
    }
}
