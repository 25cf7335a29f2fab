package io.tandem.router.worker;

import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/** Each pool in turn, skipping unhealthy workers ({@code round_robin}). */
public final class RoundRobinPolicy implements RoutingPolicy {
    private final AtomicInteger nextPrefill = new AtomicInteger();
    private final AtomicInteger nextDecode = new AtomicInteger();

    @Override
    public PrefillWorkerClient choosePrefill(List<PrefillWorkerClient> workers, int[] promptTokens) {
        return next(workers, nextPrefill, w -> w.load().healthy());
    }

    @Override
    public DecodeWorkerClient chooseDecode(List<DecodeWorkerClient> workers) {
        return next(workers, nextDecode, w -> w.load().healthy());
    }

    private static <W> W next(List<W> workers, AtomicInteger cursor, java.util.function.Predicate<W> healthy) {
        int n = workers.size();
        int start = Math.floorMod(cursor.getAndIncrement(), Math.max(1, n));
        for (int i = 0; i < n; i++) {
            W w = workers.get((start + i) % n);
            if (healthy.test(w)) {
                return w;
            }
        }
        return null;
    }
}
