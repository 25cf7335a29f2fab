package io.tandem.router.openai;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.tandem.engine.InvalidArgumentException;
import io.tandem.router.ModelNotFoundException;
import io.tandem.router.OverloadedException;

/**
 * An error as the OpenAI API reports it: an HTTP status and the body
 * {@code {"error": {"message", "type", "param", "code"}}}.
 *
 * @param status            HTTP status
 * @param type              OpenAI {@code type}, e.g. {@code invalid_request_error}
 * @param message           human-readable, names the field and the value
 * @param param             the offending request field as the API spells it ({@code max_tokens},
 *                          {@code messages[1].content}), or {@code null}
 * @param code              OpenAI {@code code}, e.g. {@code model_not_found}, or {@code null}
 * @param retryAfterSeconds value of a {@code Retry-After} header; {@code 0} for none
 */
public record OpenAiError(
        HttpResponseStatus status, String type, String message, String param, String code, int retryAfterSeconds) {

    static final String INVALID_REQUEST = "invalid_request_error";

    /** 400 {@code invalid_request_error} naming {@code param}. */
    public static OpenAiError invalidRequest(String param, String message) {
        return new OpenAiError(HttpResponseStatus.BAD_REQUEST, INVALID_REQUEST, message, param, null, 0);
    }

    /**
     * Maps an exception from request parsing or from {@link io.tandem.router.GenerationService} to
     * the error the client sees: {@link InvalidArgumentException} → 400, {@link ModelNotFoundException}
     * → 404 {@code model_not_found}, {@link OverloadedException} → 429 with {@code Retry-After},
     * anything else → 500 {@code server_error}.
     */
    public static OpenAiError from(Throwable error) {
        return switch (error) {
            case InvalidArgumentException e -> invalidRequest(e.param(), e.getMessage());
            case ModelNotFoundException e ->
                    new OpenAiError(HttpResponseStatus.NOT_FOUND, INVALID_REQUEST, e.getMessage(), "model", "model_not_found", 0);
            case OverloadedException e -> new OpenAiError(HttpResponseStatus.TOO_MANY_REQUESTS, "overloaded_error",
                    e.getMessage(), null, "overloaded", Math.max(1, e.retryAfterSeconds()));
            default -> new OpenAiError(HttpResponseStatus.INTERNAL_SERVER_ERROR, "server_error",
                    "The server failed to process the request: " + error, null, null, 0);
        };
    }

    /** The JSON body {@code {"error": {...}}}. */
    public ObjectNode toJson() {
        ObjectNode root = JsonNodeFactory.instance.objectNode();
        ObjectNode error = root.putObject("error");
        error.put("message", message);
        error.put("type", type);
        error.put("param", param);
        error.put("code", code);
        return root;
    }
}
