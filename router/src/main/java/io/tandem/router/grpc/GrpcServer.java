package io.tandem.router.grpc;

import io.grpc.Server;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import io.tandem.proto.v1.GenerationGrpc;
import io.tandem.router.GenerationService;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The router's public gRPC server (grpc-netty-shaded): {@code tandem.v1.Generation}, the standard
 * {@code grpc.health.v1.Health} service reporting SERVING for the whole server ({@code ""}) and
 * for {@code tandem.v1.Generation}, and optionally server reflection (for grpcurl). A request
 * message that does not parse gets {@code INVALID_ARGUMENT} ({@link UnparsableRequests}).
 *
 * <p>{@link #close()} is graceful and idempotent: health turns NOT_SERVING, new calls are refused,
 * calls in flight get up to 5 s to finish, then they are cancelled (which cancels their generations).
 */
public final class GrpcServer implements AutoCloseable {

    private static final long GRACE_PERIOD_MS = 5_000;

    private final GenerationService service;
    private final boolean reflection;
    private final HealthStatusManager health = new HealthStatusManager();
    private final AtomicBoolean started = new AtomicBoolean();
    private final AtomicBoolean closed = new AtomicBoolean();
    private Server server;

    /**
     * @param service    the router the API calls
     * @param reflection also serve {@code grpc.reflection.v1.ServerReflection}
     */
    public GrpcServer(GenerationService service, boolean reflection) {
        this.service = service;
        this.reflection = reflection;
    }

    /**
     * Binds and starts serving.
     *
     * @param host address to bind, e.g. {@code 0.0.0.0}
     * @param port TCP port; {@code 0} picks a free one (see {@link #port()})
     * @return this
     * @throws IOException           if the port cannot be bound
     * @throws IllegalStateException if already started or closed
     */
    public GrpcServer start(String host, int port) throws IOException {
        if (closed.get() || !started.compareAndSet(false, true)) {
            throw new IllegalStateException("the gRPC server was already started or closed");
        }
        NettyServerBuilder builder = NettyServerBuilder.forAddress(new InetSocketAddress(host, port))
                .addService(UnparsableRequests.refuse(new GenerationGrpcService(service).bindService()))
                .addService(health.getHealthService());
        if (reflection) {
            builder.addService(ProtoReflectionServiceV1.newInstance());
        }
        server = builder.build().start();
        health.setStatus("", ServingStatus.SERVING);
        health.setStatus(GenerationGrpc.SERVICE_NAME, ServingStatus.SERVING);
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
