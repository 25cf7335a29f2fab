package io.tandem.engine;

import io.tandem.engine.sampling.SamplingParams;
import io.tandem.kvcache.KvHandle;

/**
 * Continue a prefilled sequence.
 *
 * @param requestId      request id
 * @param promptTokenIds prompt tokens (their K/V are behind {@code kvHandle})
 * @param firstToken     token sampled by the prefill worker (step 0)
 * @param kvHandle       the prompt's KV pages on the prefill worker
 * @param sampling       how to sample the following tokens
 * @param seed           the request's random seed
 */
public record DecodeRequest(String requestId, int[] promptTokenIds, int firstToken, KvHandle kvHandle,
                            SamplingParams sampling, long seed) {}
