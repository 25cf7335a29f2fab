package io.tandem.router.worker;

import java.util.List;

/**
 * Chooses the prefill and the decode worker of each request (DESIGN.md §2, router). Called on
 * request threads concurrently; implementations are thread-safe. Only healthy workers ({@link
 * WorkerLoad#healthy()}) are chosen: a worker whose load monitor marks it unhealthy leaves the
 * pool until it answers again.
 *
 * <p>The router tells the policy when each choice stops loading the worker ({@link
 * #prefillEnded}, {@link #decodeEnded}), so a load-aware policy can count the work it sent that
 * the workers' load reports (polled every 500 ms) do not show yet.
 */
public interface RoutingPolicy {
    /**
     * @param workers      the prefill pool, in a stable order
     * @param promptTokens the request's prompt (for prefix-affinity policies)
     * @param cacheSalt    the request's {@code cache_salt}, or {@code null} (part of every block hash)
     * @return the chosen worker and the prefill work charged to it, or {@code null} if no worker is healthy
     */
    PrefillRoute choosePrefill(List<PrefillWorkerClient> workers, int[] promptTokens, String cacheSalt);

    /** The prefill of a route from {@link #choosePrefill} ended (result, error or rejection); called once per route. */
    default void prefillEnded(PrefillRoute route) {}

    /** @return a healthy decode worker, or {@code null} if none is healthy */
    DecodeWorkerClient chooseDecode(List<DecodeWorkerClient> workers);

    /** A sequence sent to a worker chosen by {@link #chooseDecode} ended; called once per choice. */
    default void decodeEnded(DecodeWorkerClient worker) {}

    /**
     * The worker left its pool and was closed ({@link WorkerPool}): the policy may forget what it
     * keeps about it. An end reported for it afterwards ({@link #prefillEnded}, {@link
     * #decodeEnded}; a choice that raced with the removal) is ignored.
     */
    default void workerRemoved(WorkerClient worker) {}

    /**
     * The policy named on the command line ({@code --routing-policy}).
     *
     * @param name          {@code round_robin}, {@code least_loaded} or {@code kv_aware}
     * @param modelId       the served model's id (part of every block hash; workers use the same)
     * @param overlapWeight {@code kv_aware}'s weight of uncached prefill tokens against queued ones
     * @throws IllegalArgumentException naming the value if the name is unknown or the weight is negative
     */
    static RoutingPolicy named(String name, String modelId, double overlapWeight) {
        return switch (name) {
            case "round_robin" -> new RoundRobinPolicy();
            case "least_loaded" -> new LeastLoadedPolicy();
            case "kv_aware" -> new KvAwarePolicy(modelId, overlapWeight);
            default -> throw new IllegalArgumentException(
                    "unknown routing policy '" + name + "' (expected round_robin, least_loaded or kv_aware)");
        };
    }
}
