package io.tandem.router.worker;

import java.util.List;

/**
 * The decode choice of the load-aware policies: the healthy worker with the fewest sequences
 * (running + waiting as last reported, or the sequences this router has sent it and not seen end,
 * whichever is more), ties going to the one with the larger share of free KV blocks; a worker with
 * no free block at all comes last, as a new sequence there would wait or preempt another.
 */
final class DecodeBalancer {
    /** Puts a full worker behind every worker with room, whatever their sequence counts. */
    private static final double FULL_PENALTY = 1e12;

    private final CheapestWorker cheapest = new CheapestWorker();
    private final InFlightCounter sequences = new InFlightCounter();

    DecodeWorkerClient choose(List<DecodeWorkerClient> workers) {
        DecodeWorkerClient w = cheapest.choose(workers, this::cost);
        if (w != null) {
            sequences.started(w, 1);
        }
        return w;
    }

    void ended(DecodeWorkerClient worker) {
        sequences.ended(worker, 1, InFlightCounter.START_UNKNOWN);
    }

    /** Drops the counts of a worker that left the pool. */
    void forget(WorkerClient worker) {
        sequences.forget(worker);
    }

    /** Sequences, plus the used share of KV blocks in [0, 1] as the tie-break. */
    double cost(DecodeWorkerClient worker) {
        WorkerLoad load = worker.load();
        long seqs = Math.max((long) load.numRunning() + load.numWaiting(), sequences.get(worker));
        if (load.numTotalBlocks() <= 0) {
            return seqs;
        }
        double used = 1.0 - (double) load.numFreeBlocks() / load.numTotalBlocks();
        return (load.numFreeBlocks() == 0 ? FULL_PENALTY : 0) + seqs + used;
    }
}
