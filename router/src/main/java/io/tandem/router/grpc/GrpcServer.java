package io.tandem.router.grpc;

import io.grpc.ServerServiceDefinition;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import io.tandem.control.HealthCheckedGrpcServer;
import io.tandem.proto.v1.GenerationGrpc;
import io.tandem.router.GenerationService;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * The router's public gRPC server: {@code tandem.v1.Generation} on a {@link HealthCheckedGrpcServer}
 * (health SERVING for {@code ""} and {@code tandem.v1.Generation}; graceful, idempotent close), and
 * optionally server reflection (for grpcurl). A request message that does not parse gets
 * {@code INVALID_ARGUMENT} ({@link UnparsableRequests}); requests are bounded by gRPC's default
 * 4 MiB.
 */
public final class GrpcServer implements AutoCloseable {
    private static final int MAX_REQUEST_BYTES = 4 << 20;

    private final HealthCheckedGrpcServer server;

    /**
     * @param service    the router the API calls
     * @param reflection also serve {@code grpc.reflection.v1.ServerReflection}
     */
    public GrpcServer(GenerationService service, boolean reflection) {
        List<ServerServiceDefinition> services = new ArrayList<>();
        services.add(UnparsableRequests.refuse(new GenerationGrpcService(service).bindService()));
        if (reflection) {
            services.add(ProtoReflectionServiceV1.newInstance().bindService());
        }
        this.server = new HealthCheckedGrpcServer(GenerationGrpc.SERVICE_NAME, services, MAX_REQUEST_BYTES);
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
        server.start(host, port);
        return this;
    }

    /** The bound TCP port (the ephemeral one when started with port 0). */
    public int port() {
        return server.port();
    }

    @Override
    public void close() {
        server.close();
    }
}
