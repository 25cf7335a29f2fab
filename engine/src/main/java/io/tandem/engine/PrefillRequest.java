package io.tandem.engine;

import io.tandem.engine.sampling.SamplingParams;

/**
 * A prompt to prefill.
 *
 * @param requestId      request id
 * @param promptTokenIds prompt tokens, BOS included when the model wants one
 * @param sampling       how to sample the first token
 * @param seed           the request's random seed (see {@link io.tandem.engine.sampling.Sampler})
 * @param cacheSalt      isolates this request's prefix-cache entries ({@code cache_salt}), or {@code null}
 */
public record PrefillRequest(String requestId, int[] promptTokenIds, SamplingParams sampling, long seed,
                             String cacheSalt) {

    /** A request without a cache salt. */
    public PrefillRequest(String requestId, int[] promptTokenIds, SamplingParams sampling, long seed) {
        this(requestId, promptTokenIds, sampling, seed, null);
    }
}
