package io.tandem.router.worker;

import com.google.common.util.concurrent.FutureCallback;
import com.google.common.util.concurrent.Futures;
import com.google.common.util.concurrent.ListenableFuture;
import com.google.common.util.concurrent.MoreExecutors;
import io.grpc.ManagedChannel;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.tandem.control.LoadReports;
import io.tandem.proto.v1.LoadReport;
import java.time.Duration;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Polls one remote worker every {@link #POLL_INTERVAL}: {@code grpc.health.v1} Check of its
 * service, then {@code GetLoad}, each under a deadline of one interval. A worker that answers
 * SERVING with a report is healthy with that load; one that says NOT_SERVING (draining) is
 * unhealthy at once; one that fails {@link #FAILURES_BEFORE_UNHEALTHY} polls in a row (down,
 * unreachable, hung) is unhealthy, so a dead worker leaves the pool within about two seconds. It
 * is healthy again at its first good answer: after each failure the channel's reconnect backoff
 * is reset, so a restarted worker is found at the next poll rather than minutes later.
 *
 * <p>Polls never overlap: the next is scheduled when the last one ends.
 */
final class LoadMonitor implements AutoCloseable {
    static final Duration POLL_INTERVAL = Duration.ofMillis(500);
    static final int FAILURES_BEFORE_UNHEALTHY = 2;
    private static final Logger LOG = LoggerFactory.getLogger(LoadMonitor.class);

    private final String target;
    private final ManagedChannel channel;
    private final String serviceName;
    private final Function<Duration, ListenableFuture<LoadReport>> getLoad;
    private final ScheduledExecutorService scheduler;
    private volatile WorkerLoad load = WorkerLoad.UNREACHABLE;
    private volatile String workerId;
    private volatile long epoch;
    private volatile boolean closed;
    private int consecutiveFailures;

    /**
     * Starts polling at once.
     *
     * @param target      the worker's address, its id until it reports one
     * @param serviceName the health key of the worker's service
     * @param getLoad     calls {@code GetLoad} under the given deadline
     */
    LoadMonitor(String target, ManagedChannel channel, String serviceName,
                Function<Duration, ListenableFuture<LoadReport>> getLoad, ScheduledExecutorService scheduler) {
        this.target = target;
        this.workerId = target;
        this.channel = channel;
        this.serviceName = serviceName;
        this.getLoad = getLoad;
        this.scheduler = scheduler;
        scheduler.execute(this::poll);
    }

    /** The latest load; {@link WorkerLoad#UNREACHABLE} until the first good answer. */
    WorkerLoad load() {
        return load;
    }

    /** The id the worker reports, or its address until it has answered once. */
    String workerId() {
        return workerId;
    }

    private void poll() {
        if (closed) {
            return;
        }
        long started = System.nanoTime();
        ListenableFuture<HealthCheckResponse> health = HealthGrpc.newFutureStub(channel)
                .withDeadlineAfter(POLL_INTERVAL)
                .check(HealthCheckRequest.newBuilder().setService(serviceName).build());
        ListenableFuture<LoadReport> report = Futures.transformAsync(health, h -> h.getStatus() == HealthCheckResponse.ServingStatus.SERVING
                ? getLoad.apply(POLL_INTERVAL)
                : Futures.immediateFailedFuture(new NotServing(h.getStatus())), MoreExecutors.directExecutor());
        Futures.addCallback(report, new FutureCallback<>() {
            @Override
            public void onSuccess(LoadReport r) {
                onReport(r, started);
                next();
            }

            @Override
            public void onFailure(Throwable error) {
                onFailedPoll(error);
                next();
            }
        }, MoreExecutors.directExecutor());
    }

    private void next() {
        if (!closed) {
            try {
                scheduler.schedule(this::poll, POLL_INTERVAL.toNanos(), TimeUnit.NANOSECONDS);
            } catch (java.util.concurrent.RejectedExecutionException shutDown) {
                closed = true;
            }
        }
    }

    /** @param asOfNanos when the poll started: the report's numbers are no older */
    private void onReport(LoadReport r, long asOfNanos) {
        if (epoch != 0 && r.getEpoch() != epoch) {
            LOG.info("worker {} at {} restarted (epoch {} → {})", r.getWorkerId(), target, epoch, r.getEpoch());
        }
        if (!load.healthy()) {
            LOG.info("worker {} at {} is healthy", r.getWorkerId(), target);
        }
        workerId = r.getWorkerId();
        epoch = r.getEpoch();
        consecutiveFailures = 0;
        load = new WorkerLoad(true, r.getNumRunning(), r.getNumWaiting(), r.getQueuedPrefillTokens(), r.getNumFreeBlocks(),
                r.getNumTotalBlocks(), LoadReports.cachedBlockHashes(r), asOfNanos);
    }

    private void onFailedPoll(Throwable error) {
        consecutiveFailures++;
        channel.resetConnectBackoff();
        boolean draining = error instanceof NotServing;
        if (load.healthy() && (draining || consecutiveFailures >= FAILURES_BEFORE_UNHEALTHY)) {
            LOG.warn("worker {} at {} is unhealthy: {}", workerId, target, error.getMessage());
            load = WorkerLoad.UNREACHABLE;
        }
    }

    /** Stops polling (a poll in flight ends on its own). Idempotent. */
    @Override
    public void close() {
        closed = true;
    }

    /** The worker's health service answered, but not SERVING. */
    private static final class NotServing extends Exception {
        private static final long serialVersionUID = 1L;

        NotServing(HealthCheckResponse.ServingStatus status) {
            super("health " + status, null, false, false);
        }
    }
}
