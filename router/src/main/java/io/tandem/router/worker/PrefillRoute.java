package io.tandem.router.worker;

import java.util.Objects;

/**
 * A prefill worker chosen for one request ({@link RoutingPolicy#choosePrefill}).
 *
 * @param worker           the chosen worker
 * @param numPrefillTokens prompt tokens the policy expects the worker to compute (the prompt less
 *                         the prefix it expects cached there), charged to the worker until
 *                         {@link RoutingPolicy#prefillEnded}; >= 0
 * @param startedNanos     {@link System#nanoTime()} of the choice
 */
public record PrefillRoute(PrefillWorkerClient worker, long numPrefillTokens, long startedNanos) {
    public PrefillRoute {
        Objects.requireNonNull(worker, "worker");
        if (numPrefillTokens < 0) {
            throw new IllegalArgumentException("numPrefillTokens must be >= 0, got " + numPrefillTokens);
        }
    }
}
