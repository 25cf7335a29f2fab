package io.tandem.router;

import io.tandem.engine.InvalidArgumentException;
import io.tandem.engine.sampling.SamplingParams;

/**
 * One generation request as the router receives it from either public API.
 *
 * @param requestId      id used in logs and echoed to the client; never {@code null}
 * @param model          model id as listed by {@code /v1/models}; {@code null} or empty means the
 *                       only model served
 * @param prompt         prompt text, tokenized by the router (BOS added when the model wants one);
 *                       exactly one of {@code prompt} and {@code promptTokenIds} is non-null
 * @param promptTokenIds prompt already tokenized, used verbatim
 * @param sampling       how to sample; validated by its own constructor
 * @param cacheSalt      isolates the request's prefix-cache entries (vLLM's {@code cache_salt}:
 *                       only requests with the same salt share cached blocks), or {@code null}
 * @throws InvalidArgumentException ({@code prompt}) when both or neither prompt form is given
 */
public record CompletionRequest(
        String requestId, String model, String prompt, int[] promptTokenIds, SamplingParams sampling, String cacheSalt) {

    /** A request without a cache salt. */
    public CompletionRequest(String requestId, String model, String prompt, int[] promptTokenIds, SamplingParams sampling) {
        this(requestId, model, prompt, promptTokenIds, sampling, null);
    }

    public CompletionRequest {
        if (requestId == null || requestId.isEmpty()) {
            throw new IllegalArgumentException("requestId must be set");
        }
        if ((prompt == null) == (promptTokenIds == null)) {
            throw new InvalidArgumentException("prompt", "exactly one of prompt (text) and prompt token ids must be given");
        }
        if (cacheSalt != null && cacheSalt.isEmpty()) {
            throw new InvalidArgumentException("cache_salt", "cache_salt must not be empty when given");
        }
        if (sampling == null) {
            throw new InvalidArgumentException("sampling", "sampling parameters must be given");
        }
    }
}
