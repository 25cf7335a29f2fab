package io.tandem.decode;

import io.tandem.kvcache.KvCacheStorage;
import io.tandem.kvcache.KvHandle;
import io.tandem.kvcache.transfer.KvTransport;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.IntConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps alive the leases of the KV handles a decode worker holds (DESIGN.md §3): from
 * {@link #hold} (the worker accepted the request) until {@link #release} (pulled, finished,
 * cancelled or failed), every {@code interval} it renews each held lease through the wrapped
 * transport, so a request that waits in the decode queue, or whose pull is slow, longer than the
 * prefill worker's lease timeout still finds its pages. The interval must be below the lease
 * timeout; a third of it leaves two renewals' slack.
 *
 * <p>Renewals are fire and forget: a lease that lapsed anyway (the prefill worker died or
 * restarted) fails the next pull of it, which ends the request or recomputes it. Pulls and
 * releases pass through. Thread-safe; one daemon timer thread, ended by {@link #close()}.
 */
final class LeaseRenewingTransport implements KvTransport, AutoCloseable {
    private record LeaseKey(String workerId, long epoch, long leaseId) {
        static LeaseKey of(KvHandle h) {
            return new LeaseKey(h.workerId(), h.epoch(), h.leaseId());
        }
    }

    private static final Logger LOG = LoggerFactory.getLogger(LeaseRenewingTransport.class);

    private final KvTransport delegate;
    private final Map<LeaseKey, KvHandle> held = new ConcurrentHashMap<>();
    private final IntConsumer onRenewalsSent;
    private final ScheduledExecutorService timer;

    /**
     * @param delegate       pulls, renews and releases
     * @param interval       time between two renewals of a held lease; below the lease timeout
     * @param onRenewalsSent told how many renewals each round sent (for metrics)
     */
    LeaseRenewingTransport(KvTransport delegate, Duration interval, IntConsumer onRenewalsSent) {
        if (interval.isNegative() || interval.isZero()) {
            throw new IllegalArgumentException("lease renewal interval must be positive, got " + interval);
        }
        this.delegate = delegate;
        this.onRenewalsSent = onRenewalsSent;
        this.timer = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "tandem-lease-renewer");
            t.setDaemon(true);
            return t;
        });
        long nanos = interval.toNanos();
        timer.scheduleAtFixedRate(this::renewAll, nanos, nanos, TimeUnit.NANOSECONDS);
    }

    /** The worker now owns {@code handle}: renew its lease until {@link #release}. */
    void hold(KvHandle handle) {
        held.put(LeaseKey.of(handle), handle);
    }

    /** Leases held now. */
    int numHeld() {
        return held.size();
    }

    @Override
    public CompletableFuture<Void> pull(KvHandle handle, KvCacheStorage dst, int[] dstBlockIds) {
        return delegate.pull(handle, dst, dstBlockIds);
    }

    @Override
    public void renew(KvHandle handle) {
        delegate.renew(handle);
    }

    /** Stops renewing the handle's lease, then releases it. */
    @Override
    public void release(KvHandle handle) {
        held.remove(LeaseKey.of(handle));
        delegate.release(handle);
    }

    private void renewAll() {
        int n = 0;
        for (KvHandle handle : held.values()) {
            try {
                delegate.renew(handle);
                n++;
            } catch (RuntimeException e) {
                // A renewal is best effort; the timer must go on for the other leases.
                LOG.warn("renewing lease {} of {} failed", handle.leaseId(), handle.workerId(), e);
            }
        }
        if (n > 0) {
            onRenewalsSent.accept(n);
        }
    }

    /** Stops renewing (leases still held expire at their owners unless released). Idempotent. */
    @Override
    public void close() {
        timer.shutdownNow();
    }
}
