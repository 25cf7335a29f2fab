package io.tandem.router.worker;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Work this router has sent to each worker and not yet seen end (prefill tokens, or decode
 * sequences), and what ended lately. A worker's load report lags by up to a poll interval, so on
 * its own it misses the work just sent (a burst piles onto one worker) and still counts work
 * that has just ended (a request right after another looks queued behind it); {@link #estimate}
 * corrects both. Thread-safe.
 */
final class InFlightCounter {
    /** How long ended work is remembered: well over a poll interval, so every report still in use is covered. */
    static final Duration ENDED_MEMORY = Duration.ofSeconds(5);

    private final ConcurrentHashMap<WorkerClient, Counts> counts = new ConcurrentHashMap<>();

    /** Work sent to the worker and not ended. */
    long get(WorkerClient worker) {
        Counts c = counts.get(worker);
        return c == null ? 0 : c.inFlight();
    }

    /** Counts {@code amount} more work sent to the worker. */
    void started(WorkerClient worker, long amount) {
        counts.computeIfAbsent(worker, w -> new Counts()).started(amount);
    }

    /** {@link #ended}'s start time when it is not known: such work is never taken out of a report. */
    static final long START_UNKNOWN = Long.MAX_VALUE;

    /**
     * Counts {@code amount} of the worker's work, sent at {@code startedNanos}, as ended now. Work of
     * a worker {@link #forget forgotten} meanwhile is ignored.
     *
     * @throws IllegalStateException if more ended than was started
     */
    void ended(WorkerClient worker, long amount, long startedNanos) {
        Counts c = counts.get(worker);
        if (c != null) {
            c.ended(worker, amount, startedNanos, System.nanoTime());
        }
    }

    /** Drops the counts of a worker that left the pool (its remaining ends are then ignored). */
    void forget(WorkerClient worker) {
        counts.remove(worker);
    }

    /**
     * The worker's current load in the counted unit: what it reported ({@code reported}, taken no
     * earlier than {@code asOfNanos}) less our work that was sent before and ended after that time
     * (the report may still count it), or our own work in flight, whichever is more.
     */
    long estimate(WorkerClient worker, long reported, long asOfNanos) {
        Counts c = counts.get(worker);
        if (c == null) {
            return reported;
        }
        return Math.max(c.inFlight(), reported - c.endedSince(asOfNanos));
    }

    private static final class Counts {
        private long inFlight;
        /** (start time, end time, amount) of ended work, in order of ending. */
        private final ArrayDeque<long[]> ended = new ArrayDeque<>();

        synchronized long inFlight() {
            return inFlight;
        }

        synchronized void started(long amount) {
            inFlight += amount;
        }

        synchronized void ended(WorkerClient worker, long amount, long startedNanos, long nowNanos) {
            if (amount > inFlight) {
                throw new IllegalStateException("more work of " + worker.workerId() + " ended (" + amount
                        + ") than is in flight (" + inFlight + ")");
            }
            inFlight -= amount;
            ended.addLast(new long[] {startedNanos, nowNanos, amount});
            while (nowNanos - ended.peekFirst()[1] > ENDED_MEMORY.toNanos()) {
                ended.removeFirst();
            }
        }

        /** Work that started before {@code sinceNanos} and ended at or after it. */
        synchronized long endedSince(long sinceNanos) {
            long sum = 0;
            for (var it = ended.descendingIterator(); it.hasNext(); ) {
                long[] e = it.next();
                if (e[1] - sinceNanos < 0) {
                    break;
                }
                if (e[0] != START_UNKNOWN && e[0] - sinceNanos < 0) {
                    sum += e[2];
                }
            }
            return sum;
        }
    }
}
