package io.tandem.router.worker;

import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.ToDoubleFunction;

/**
 * Picks the healthy worker of least cost. The scan starts one place further on each call, and a
 * later worker wins only with a strictly lower cost, so workers of equal cost take turns (with a
 * constant cost this is round robin).
 */
final class CheapestWorker {
    private final AtomicInteger cursor = new AtomicInteger();

    /**
     * @param cost a healthy worker's cost; lower is better
     * @return the cheapest healthy worker, or {@code null} if none is healthy
     */
    <W extends WorkerClient> W choose(List<W> workers, ToDoubleFunction<W> cost) {
        int n = workers.size();
        int start = Math.floorMod(cursor.getAndIncrement(), Math.max(1, n));
        W best = null;
        double bestCost = Double.POSITIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            W w = workers.get((start + i) % n);
            if (!w.load().healthy()) {
                continue;
            }
            double c = cost.applyAsDouble(w);
            if (best == null || c < bestCost) {
                best = w;
                bestCost = c;
            }
        }
        return best;
    }
}
