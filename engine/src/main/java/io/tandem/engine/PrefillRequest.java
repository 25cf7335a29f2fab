package io.tandem.engine;

import io.tandem.engine.sampling.SamplingParams;

/**
 * A prompt to prefill.
 *
 * @param requestId      request id
 * @param promptTokenIds prompt tokens, BOS included when the model wants one
 * @param sampling       how to sample the first token
 * @param seed           the request's random seed (see {@link io.tandem.engine.sampling.Sampler})
 */
public record PrefillRequest(String requestId, int[] promptTokenIds, SamplingParams sampling, long seed) {}
