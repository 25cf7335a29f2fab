package io.tandem.engine.backend;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A fixed set of compute threads for low-latency parallel loops. A dispatch publishes the task
 * with a generation counter; each worker runs its contiguous slice and the caller runs slice 0.
 * Workers spin briefly after a slice (the next kernel of a forward pass follows within
 * microseconds) and then park, so an idle pool costs no CPU. Dispatches from several engine
 * threads are serialized.
 */
final class WorkerPool implements AutoCloseable {
    private static final long SPIN_NANOS = 50_000;

    private final int threads;
    private final Thread[] workers;
    private final ReentrantLock dispatchLock = new ReentrantLock();
    private final AtomicInteger generation = new AtomicInteger();
    private final AtomicInteger pending = new AtomicInteger();
    private volatile RangeTask task;
    private volatile int count;
    private volatile Thread caller;
    private volatile Throwable failure;
    private volatile boolean closed;

    WorkerPool(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        this.threads = threads;
        this.workers = new Thread[threads - 1];
        for (int i = 0; i < workers.length; i++) {
            int index = i + 1;
            workers[i] = new Thread(() -> workLoop(index), "tandem-cpu-" + index);
            workers[i].setDaemon(true);
            workers[i].start();
        }
    }

    int threads() {
        return threads;
    }

    void run(int n, RangeTask t) {
        if (threads == 1 || n < 2) {
            t.run(0, n, 0);
            return;
        }
        dispatchLock.lock();
        try {
            if (closed) {
                throw new IllegalStateException("worker pool is closed");
            }
            task = t;
            count = n;
            caller = Thread.currentThread();
            failure = null;
            pending.set(workers.length);
            generation.incrementAndGet();
            for (Thread w : workers) {
                LockSupport.unpark(w);
            }
            t.run(0, n / threads, 0);
            awaitWorkers();
            task = null;
            Throwable f = failure;
            if (f != null) {
                throw new IllegalStateException("parallel kernel failed", f);
            }
        } finally {
            dispatchLock.unlock();
        }
    }

    private void awaitWorkers() {
        long start = System.nanoTime();
        while (pending.get() > 0) {
            if (System.nanoTime() - start < SPIN_NANOS) {
                Thread.onSpinWait();
            } else {
                LockSupport.parkNanos(this, 100_000);
            }
        }
    }

    private void workLoop(int index) {
        int seen = 0;
        long idleSince = System.nanoTime();
        while (!closed) {
            int g = generation.get();
            if (g == seen) {
                if (System.nanoTime() - idleSince < SPIN_NANOS) {
                    Thread.onSpinWait();
                } else {
                    LockSupport.park(this);
                }
                continue;
            }
            seen = g;
            int n = count;
            try {
                task.run((int) ((long) n * index / threads), (int) ((long) n * (index + 1) / threads), index);
            } catch (Throwable e) {
                failure = e;
            }
            if (pending.decrementAndGet() == 0) {
                LockSupport.unpark(caller);
            }
            idleSince = System.nanoTime();
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (Thread w : workers) {
            LockSupport.unpark(w);
        }
        for (Thread w : workers) {
            try {
                w.join(1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }
}
