package io.tandem.engine;

import io.tandem.engine.sampling.SamplingParams;
import io.tandem.kvcache.KvHandle;

/**
 * Continue a prefilled sequence.
 *
 * @param requestId      request id
 * @param promptTokenIds prompt tokens (their K/V are behind {@code kvHandle})
 * @param firstToken     token sampled by the prefill worker (step 0), or {@link #FIRST_TOKEN_PENDING}
 *                       when the request comes with an early handle, before the prefill finished: the
 *                       token then follows through {@link DecodeEngine#provideFirstToken}
 * @param kvHandle       the prompt's KV pages on the prefill worker
 * @param sampling       how to sample the following tokens
 * @param seed           the request's random seed
 */
public record DecodeRequest(String requestId, int[] promptTokenIds, int firstToken, KvHandle kvHandle,
                            SamplingParams sampling, long seed) {
    /** {@link #firstToken()} of a request whose prefill has not sampled it yet. */
    public static final int FIRST_TOKEN_PENDING = -1;

    /** Whether the first token is still to come. */
    public boolean firstTokenPending() {
        return firstToken == FIRST_TOKEN_PENDING;
    }
}
