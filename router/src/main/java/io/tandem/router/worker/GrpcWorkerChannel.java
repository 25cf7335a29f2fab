package io.tandem.router.worker;

import com.google.common.util.concurrent.ListenableFuture;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.tandem.control.HealthCheckedGrpcServer;
import io.tandem.control.HostPort;
import io.tandem.proto.v1.LoadReport;
import java.time.Duration;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * What the router's gRPC clients of prefill and decode workers share: one channel to the worker
 * (messages up to {@link HealthCheckedGrpcServer#MAX_MESSAGE_BYTES}, for handles with page
 * summaries) and the {@link LoadMonitor} polling its health and load on it.
 */
abstract class GrpcWorkerChannel implements AutoCloseable {
    final HostPort target;
    final ManagedChannel channel;
    private final LoadMonitor monitor;
    private volatile boolean closed;

    /**
     * Opens the channel and starts polling.
     *
     * @param serviceName the worker service's health key
     * @param getLoad     makes the {@code GetLoad} call on the channel, under the given deadline
     * @param scheduler   runs the load polls (shared by a router's clients; owned by the caller)
     */
    GrpcWorkerChannel(HostPort target, String serviceName,
                      Function<ManagedChannel, Function<Duration, ListenableFuture<LoadReport>>> getLoad,
                      ScheduledExecutorService scheduler) {
        this.target = target;
        this.channel = Grpc.newChannelBuilderForAddress(target.host(), target.port(), InsecureChannelCredentials.create())
                .maxInboundMessageSize(HealthCheckedGrpcServer.MAX_MESSAGE_BYTES)
                .build();
        this.monitor = new LoadMonitor(target.toString(), channel, serviceName, getLoad.apply(channel), scheduler);
    }

    /** The id the worker reports, or {@code host:port} until it has answered. */
    public String workerId() {
        return monitor.workerId();
    }

    public HostPort target() {
        return target;
    }

    /** The worker's last polled load ({@link WorkerLoad#UNREACHABLE}-like when unhealthy). */
    public WorkerLoad load() {
        return monitor.load();
    }

    boolean isClosed() {
        return closed;
    }

    /** Stops polling and shuts the channel down; calls in flight end and their callers hear of it. Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        monitor.close();
        channel.shutdownNow();
        try {
            channel.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
