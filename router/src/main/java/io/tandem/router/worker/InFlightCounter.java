package io.tandem.router.worker;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Work this router has sent to each worker and not yet seen end (prefill tokens, or decode
 * sequences). A worker's load report lags by up to a poll interval; counting our own work closes
 * that gap for bursts. Thread-safe.
 */
final class InFlightCounter {
    private final ConcurrentHashMap<WorkerClient, AtomicLong> counts = new ConcurrentHashMap<>();

    long get(WorkerClient worker) {
        AtomicLong c = counts.get(worker);
        return c == null ? 0 : c.get();
    }

    void add(WorkerClient worker, long delta) {
        long now = counts.computeIfAbsent(worker, w -> new AtomicLong()).addAndGet(delta);
        if (now < 0) {
            throw new IllegalStateException("in-flight work of " + worker.workerId() + " fell below 0: " + now);
        }
    }
}
