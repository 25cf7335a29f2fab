package io.tandem.router.worker;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One role's pool of workers (prefill or decode), whose membership may change while requests are
 * routed: workers found by discovery join it, workers gone from discovery leave it. Routing reads
 * {@link #members()}, an immutable snapshot replaced on every change (copy-on-write), so a policy
 * scans a stable list without locks.
 *
 * <p>A request holds each worker it uses ({@link #tryAcquire} … {@link #release}). A worker that
 * {@link #remove leaves} the pool gets no new request (it is out of the snapshot, and an acquire
 * that raced with the removal fails) and <em>drains</em>: it is closed once the last request
 * holding it lets go, never under a running request; each request is bounded by its call's
 * deadline, so draining is too. Invariant: a client is closed only when it is out of the pool and
 * no request holds it.
 *
 * <p>The pool owns its clients: {@link #close()} closes every member and draining worker.
 * Thread-safe.
 *
 * @param <W> {@link PrefillWorkerClient} or {@link DecodeWorkerClient}
 */
public final class WorkerPool<W extends WorkerClient> implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(WorkerPool.class);

    private final String role;
    private final Consumer<W> onClosed;
    private final Executor closer;
    /** The members, in order of joining; replaced, never mutated. */
    private volatile List<W> members;
    /** Every worker not yet closed: members and draining ones. */
    private final Map<W, Holds> holds = new ConcurrentHashMap<>();
    private volatile boolean closed;

    /**
     * @param role     {@code prefill} or {@code decode}, for log lines and errors
     * @param initial  the first members (static workers)
     * @param onClosed called once with each worker the pool closed after it left (not at
     *                 {@link #close()}), e.g. for a routing policy to forget it
     * @param closer   runs the closing of a worker that left (and then {@code onClosed}): the last
     *                 release happens on a transport or output thread, which a client's close
     *                 (waiting for its channel to terminate) must not block
     * @throws IllegalArgumentException if {@code initial} holds a worker twice
     */
    public WorkerPool(String role, List<W> initial, Consumer<W> onClosed, Executor closer) {
        this.role = role;
        this.onClosed = onClosed;
        this.closer = closer;
        for (W w : initial) {
            if (holds.putIfAbsent(w, new Holds()) != null) {
                throw new IllegalArgumentException(role + " worker " + w.workerId() + " is listed twice");
            }
        }
        this.members = List.copyOf(initial);
    }

    /** The current members, in order of joining: an immutable snapshot. */
    public List<W> members() {
        return members;
    }

    /** Workers that left the pool and still serve requests. */
    public int numDraining() {
        return holds.size() - members.size();
    }

    /**
     * Adds a worker at the end of the pool.
     *
     * @throws IllegalStateException if it is already in the pool or draining, or the pool is closed
     */
    public synchronized void add(W worker) {
        if (closed) {
            throw new IllegalStateException("the " + role + " pool is closed");
        }
        if (holds.putIfAbsent(worker, new Holds()) != null) {
            throw new IllegalStateException(role + " worker " + worker.workerId() + " is already in the pool");
        }
        List<W> next = new ArrayList<>(members);
        next.add(worker);
        members = List.copyOf(next);
    }

    /**
     * Takes a worker out of the pool: no new request goes to it, and it is closed once the requests
     * holding it have ended (at once if none does).
     *
     * @return the number of requests still holding it, or {@code -1} if it was not a member
     */
    public int remove(W worker) {
        Holds h;
        synchronized (this) {
            if (!members.contains(worker)) {
                return -1;
            }
            List<W> next = new ArrayList<>(members);
            next.remove(worker);
            members = List.copyOf(next);
            h = holds.get(worker);
        }
        h.retired = true;
        int held = h.count.get();
        if (held == 0) {
            closeRetired(worker, h);
        }
        return held;
    }

    /**
     * Holds a worker for one request, so that it is not closed under it.
     *
     * @return {@code false} if the worker has left the pool (the caller chose it from an older
     *         snapshot and must choose again)
     */
    public boolean tryAcquire(W worker) {
        Holds h = holds.get(worker);
        if (h == null) {
            return false;
        }
        h.count.incrementAndGet();
        // A remover sets retired, then reads the count; we raise the count, then read retired: one
        // of us sees the other, so a retired worker is never both acquired and closed.
        if (h.retired) {
            release(worker, h);
            return false;
        }
        return true;
    }

    /**
     * Lets go of a worker held by {@link #tryAcquire}; the last release of a worker that left the
     * pool closes it.
     *
     * @throws IllegalStateException if the worker is not held (unless the pool is closed: requests
     *                               may end after it)
     */
    public void release(W worker) {
        Holds h = holds.get(worker);
        if (h == null) {
            if (closed) {
                return;
            }
            throw new IllegalStateException(role + " worker " + worker.workerId() + " released but not held");
        }
        release(worker, h);
    }

    private void release(W worker, Holds h) {
        int left = h.count.decrementAndGet();
        if (left < 0) {
            throw new IllegalStateException(role + " worker " + worker.workerId() + " released more often than held");
        }
        if (left == 0 && h.retired) {
            closeRetired(worker, h);
        }
    }

    private void closeRetired(W worker, Holds h) {
        if (h.closed.compareAndSet(false, true)) {
            holds.remove(worker, h);
            closer.execute(() -> {
                worker.close();
                LOG.info("{} worker {} left the pool and is closed: no request holds it", role, worker.workerId());
                onClosed.accept(worker);
            });
        }
    }

    /** Closes every member and every draining worker, whatever holds them. Idempotent. */
    @Override
    public synchronized void close() {
        closed = true;
        for (Map.Entry<W, Holds> e : holds.entrySet()) {
            if (e.getValue().closed.compareAndSet(false, true)) {
                e.getKey().close();
            }
        }
        holds.clear();
        members = List.of();
    }

    /** Requests holding one worker, and whether it left the pool. */
    private static final class Holds {
        final AtomicInteger count = new AtomicInteger();
        volatile boolean retired;
        final AtomicBoolean closed = new AtomicBoolean();
    }
}
