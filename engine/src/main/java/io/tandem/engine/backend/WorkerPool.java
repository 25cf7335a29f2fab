package io.tandem.engine.backend;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * A fixed set of worker threads that run a parallel-for together with the calling thread, tuned
 * for many short jobs (a decode step runs about 7 matmuls per layer).
 *
 * <p>Protocol. A job is {@code count} chunks of a {@link ChunkTask}. The caller publishes it by
 * bumping an epoch in {@link #cursor} ({@code epoch << 32 | nextChunk}); every participant, the
 * caller included, claims chunk indices from the cursor with a CAS that also checks the epoch,
 * so a late worker can never claim a chunk of a newer job. The caller returns when
 * {@link #completed} reaches {@code count}; it does not wait for workers that found no work,
 * so a slow wake-up costs nothing once the caller has done the chunks itself.
 *
 * <p>Idle workers spin (about {@code spinNanos}) and then park; the caller unparks only workers
 * whose state says {@link #PARKED}. The state write and the cursor read are both volatile, so a
 * worker either sees the new job before parking or the caller sees it parked (Dekker).
 *
 * <p>One caller at a time: a second concurrent {@link #parallelFor} (or a nested one from a
 * task) throws {@link IllegalStateException}.
 */
final class WorkerPool implements AutoCloseable {

    /** Work for one chunk index of a job. */
    @FunctionalInterface
    interface ChunkTask {
        void run(int chunk);
    }

    private static final int RUNNING = 0;
    private static final int PARKED = 1;
    /** Cursor low word while a job's fields are being written: no chunk can be claimed. */
    private static final int SEALED = Integer.MAX_VALUE;
    /** Caller spins this many times on an unfinished job before it starts yielding the core. */
    private static final int CALLER_SPINS_BEFORE_YIELD = 1 << 14;

    private final int parallelism;
    private final long spinNanos;
    private final Thread[] workers;
    private final AtomicIntegerArray workerState;
    private final AtomicLong cursor = new AtomicLong();
    private final AtomicInteger completed = new AtomicInteger();
    private final AtomicBoolean inUse = new AtomicBoolean();
    private final AtomicBoolean closed = new AtomicBoolean();
    private volatile ChunkTask task;
    private volatile int chunkCount;
    private volatile Throwable failure;
    private int epoch;

    /**
     * Starts {@code parallelism - 1} daemon workers named {@code name-N}.
     *
     * @param parallelism threads that run a job, the caller included; at least 1
     * @param spinNanos   how long an idle worker spins before parking, in nanoseconds
     */
    WorkerPool(int parallelism, long spinNanos, String name) {
        if (parallelism < 1) {
            throw new IllegalArgumentException("parallelism must be at least 1, got " + parallelism);
        }
        this.parallelism = parallelism;
        this.spinNanos = spinNanos;
        this.workers = new Thread[parallelism - 1];
        this.workerState = new AtomicIntegerArray(workers.length);
        for (int i = 0; i < workers.length; i++) {
            int index = i;
            Thread t = new Thread(() -> workerLoop(index), name + "-" + (i + 1));
            t.setDaemon(true);
            workers[i] = t;
        }
        for (Thread t : workers) {
            t.start();
        }
    }

    int parallelism() {
        return parallelism;
    }

    /**
     * Runs {@code task.run(c)} for every {@code c in [0, count)} exactly once, on the caller and
     * the workers, and returns when all have finished. A chunk's exception is rethrown here after
     * every chunk has finished (the first one; later ones are suppressed into it).
     *
     * @throws IllegalStateException if the pool is closed or already running a job
     */
    void parallelFor(int count, ChunkTask task) {
        if (count <= 0) {
            return;
        }
        if (!inUse.compareAndSet(false, true)) {
            throw new IllegalStateException("WorkerPool.parallelFor called concurrently or re-entrantly");
        }
        try {
            if (closed.get()) {
                throw new IllegalStateException("WorkerPool is closed");
            }
            if (count == 1 || workers.length == 0) {
                for (int c = 0; c < count; c++) {
                    task.run(c);
                }
                return;
            }
            int e = ++epoch;
            cursor.set(pack(e, SEALED));
            this.task = task;
            this.chunkCount = count;
            this.failure = null;
            completed.set(0);
            cursor.set(pack(e, 0));
            wakeParkedWorkers();
            runChunks(e);
            awaitCompletion(count);
            this.task = null;
            Throwable f = failure;
            if (f != null) {
                throw propagate(f);
            }
        } finally {
            inUse.set(false);
        }
    }

    private static long pack(int epoch, int nextChunk) {
        return ((long) epoch << 32) | (nextChunk & 0xFFFF_FFFFL);
    }

    private void wakeParkedWorkers() {
        for (int i = 0; i < workers.length; i++) {
            if (workerState.get(i) == PARKED) {
                LockSupport.unpark(workers[i]);
            }
        }
    }

    /** Claims and runs chunks of job {@code e} until none is left. */
    private void runChunks(int e) {
        while (true) {
            long v = cursor.get();
            int chunk = (int) v;
            if ((int) (v >>> 32) != e || chunk >= chunkCount) {
                return;
            }
            if (!cursor.compareAndSet(v, v + 1)) {
                continue;
            }
            try {
                task.run(chunk);
            } catch (Throwable t) {
                recordFailure(t);
            } finally {
                completed.incrementAndGet();
            }
        }
    }

    private synchronized void recordFailure(Throwable t) {
        if (failure == null) {
            failure = t;
        } else if (failure != t) {
            failure.addSuppressed(t);
        }
    }

    private void awaitCompletion(int count) {
        int spins = 0;
        while (completed.get() < count) {
            if (++spins < CALLER_SPINS_BEFORE_YIELD) {
                Thread.onSpinWait();
            } else {
                Thread.yield();
            }
        }
    }

    private static RuntimeException propagate(Throwable t) {
        if (t instanceof RuntimeException re) {
            throw re;
        }
        if (t instanceof Error err) {
            throw err;
        }
        return new IllegalStateException("parallel task failed", t);
    }

    private void workerLoop(int index) {
        int seen = 0;
        long idleSince = System.nanoTime();
        while (!closed.get()) {
            long v = cursor.get();
            int e = (int) (v >>> 32);
            if (e != seen && (int) v != SEALED) {
                seen = e;
                runChunks(e);
                idleSince = System.nanoTime();
                continue;
            }
            if (System.nanoTime() - idleSince < spinNanos) {
                Thread.onSpinWait();
                continue;
            }
            workerState.set(index, PARKED);
            long again = cursor.get();
            boolean newWork = (int) (again >>> 32) != seen && (int) again != SEALED;
            if (!newWork && !closed.get()) {
                LockSupport.park(this);
            }
            workerState.set(index, RUNNING);
            idleSince = System.nanoTime();
        }
    }

    /** Workers currently parked (for tests). */
    int parkedWorkers() {
        int n = 0;
        for (int i = 0; i < workers.length; i++) {
            if (workerState.get(i) == PARKED) {
                n++;
            }
        }
        return n;
    }

    /** Workers still alive (for tests). */
    int liveWorkers() {
        int n = 0;
        for (Thread t : workers) {
            if (t.isAlive()) {
                n++;
            }
        }
        return n;
    }

    /**
     * Stops and joins the workers; idempotent. Must not be called while a job runs.
     *
     * @throws IllegalStateException if interrupted while joining (the interrupt is restored)
     */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        for (Thread t : workers) {
            LockSupport.unpark(t);
        }
        try {
            for (Thread t : workers) {
                t.join(TimeUnit.SECONDS.toMillis(10));
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while stopping workers", e);
        }
    }
}
