package io.tandem.router.worker;

import java.util.List;

/** Each pool in turn, skipping unhealthy workers ({@code round_robin}). */
public final class RoundRobinPolicy implements RoutingPolicy {
    private final CheapestWorker prefill = new CheapestWorker();
    private final CheapestWorker decode = new CheapestWorker();

    @Override
    public PrefillRoute choosePrefill(List<PrefillWorkerClient> workers, int[] promptTokens, String cacheSalt) {
        PrefillWorkerClient w = prefill.choose(workers, x -> 0);
        return w == null ? null : new PrefillRoute(w, promptTokens.length, System.nanoTime());
    }

    @Override
    public DecodeWorkerClient chooseDecode(List<DecodeWorkerClient> workers) {
        return decode.choose(workers, x -> 0);
    }
}
