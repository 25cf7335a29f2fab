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
 * @param earlyHandle    hand out the KV handle as soon as the prompt's blocks are allocated, before
 *                       its K/V are computed ({@link PrefillCallback#onKvHandle}), so that a decode
 *                       worker can pull each page once it is final while the prefill goes on
 */
public record PrefillRequest(String requestId, int[] promptTokenIds, SamplingParams sampling, long seed,
                             String cacheSalt, boolean earlyHandle) {

    /** A request whose handle comes with its first token. */
    public PrefillRequest(String requestId, int[] promptTokenIds, SamplingParams sampling, long seed, String cacheSalt) {
        this(requestId, promptTokenIds, sampling, seed, cacheSalt, false);
    }

    /** A request without a cache salt, whose handle comes with its first token. */
    public PrefillRequest(String requestId, int[] promptTokenIds, SamplingParams sampling, long seed) {
        this(requestId, promptTokenIds, sampling, seed, null);
    }

    /** This request, asking for its handle early or not. */
    public PrefillRequest withEarlyHandle(boolean early) {
        return new PrefillRequest(requestId, promptTokenIds, sampling, seed, cacheSalt, early);
    }
}
