package io.tandem.router.worker;

import java.util.List;

/**
 * Chooses the prefill and the decode worker of each request (DESIGN.md §2, router). Called on
 * request threads concurrently; implementations are thread-safe.
 */
public interface RoutingPolicy {
    /**
     * @param workers      the prefill pool, in a stable order
     * @param promptTokens the request's prompt (for prefix-affinity policies)
     * @return a healthy worker, or {@code null} if none is healthy
     */
    PrefillWorkerClient choosePrefill(List<PrefillWorkerClient> workers, int[] promptTokens);

    /** @return a healthy decode worker, or {@code null} if none is healthy */
    DecodeWorkerClient chooseDecode(List<DecodeWorkerClient> workers);
}
