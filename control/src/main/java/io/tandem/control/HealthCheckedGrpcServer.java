package io.tandem.control;

import io.grpc.BindableService;
import io.grpc.Server;
import io.grpc.ServerServiceDefinition;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A Tandem gRPC server (grpc-netty-shaded): a worker's control-plane service, or the router's
 * public API, plus {@code grpc.health.v1.Health}, SERVING for the whole server ({@code ""}) and
 * for the main service's name while it runs (routers and load balancers poll it).
 *
 * <p>{@link #close()} is graceful and idempotent: health turns NOT_SERVING (routers take the worker
 * out of their pools), new calls are refused, calls in flight get up to 5 s to finish, then they
 * are cancelled (which cancels their work in the engine).
 */
public final class HealthCheckedGrpcServer implements AutoCloseable {
    /**
     * The largest control-plane message a worker (and a router's channel to one) accepts: 128 MiB,
     * twice {@link io.tandem.kvcache.PageSummaries#MAX_BYTES}, so a handle with the largest page
     * summaries a prefill worker sends fits with room for the prompt's token ids (gRPC's default
     * of 4 MiB would refuse the summaries of 512 tokens of Llama-3-8B).
     */
    public static final int MAX_MESSAGE_BYTES = 128 << 20;

    private static final long GRACE_PERIOD_MS = 5_000;

    private final String serviceName;
    private final List<ServerServiceDefinition> services;
    private final int maxInboundMessageBytes;
    private final HealthStatusManager health = new HealthStatusManager();
    private final AtomicBoolean started = new AtomicBoolean();
    private final AtomicBoolean closed = new AtomicBoolean();
    private Server server;

    /** @param serviceName the service's full name, e.g. {@code PrefillWorkerGrpc.SERVICE_NAME} (its health key) */
    public HealthCheckedGrpcServer(String serviceName, BindableService service) {
        this(serviceName, List.of(service.bindService()), MAX_MESSAGE_BYTES);
    }

    /**
     * @param serviceName            the health key of the main service
     * @param services               every service to serve besides health (e.g. the API and reflection)
     * @param maxInboundMessageBytes the largest request message accepted, in bytes
     */
    public HealthCheckedGrpcServer(String serviceName, List<ServerServiceDefinition> services, int maxInboundMessageBytes) {
        this.serviceName = serviceName;
        this.services = List.copyOf(services);
        this.maxInboundMessageBytes = maxInboundMessageBytes;
    }

    /**
     * Binds and starts serving.
     *
     * @param port TCP port; {@code 0} picks a free one (see {@link #port()})
     * @return this
     * @throws IOException           if the port cannot be bound
     * @throws IllegalStateException if already started or closed
     */
    public HealthCheckedGrpcServer start(String host, int port) throws IOException {
        if (closed.get() || !started.compareAndSet(false, true)) {
            throw new IllegalStateException("the gRPC server was already started or closed");
        }
        NettyServerBuilder builder = NettyServerBuilder.forAddress(new InetSocketAddress(host, port))
                .addService(health.getHealthService())
                .maxInboundMessageSize(maxInboundMessageBytes);
        services.forEach(builder::addService);
        server = builder.build().start();
        health.setStatus("", ServingStatus.SERVING);
        health.setStatus(serviceName, ServingStatus.SERVING);
        return this;
    }

    /** The bound TCP port (the ephemeral one when started with port 0). */
    public int port() {
        if (server == null) {
            throw new IllegalStateException("the gRPC server is not started");
        }
        return server.getPort();
    }

    @Override
    public void close() {
        if (!closed.compareAndSet(false, true) || server == null) {
            return;
        }
        health.enterTerminalState();
        server.shutdown();
        try {
            if (!server.awaitTermination(GRACE_PERIOD_MS, TimeUnit.MILLISECONDS)) {
                server.shutdownNow();
                server.awaitTermination(GRACE_PERIOD_MS, TimeUnit.MILLISECONDS);
            }
        } catch (InterruptedException e) {
            server.shutdownNow();
            Thread.currentThread().interrupt();
        }
    }
}
