package io.tandem.router.discovery;

import com.google.common.util.concurrent.ListenableFuture;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.tandem.control.HostPort;
import io.tandem.proto.v1.DecodeWorkerGrpc;
import io.tandem.proto.v1.PrefillWorkerGrpc;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * Learns what serves at an endpoint: a worker's gRPC server reports {@code grpc.health.v1} SERVING
 * for the name of its one control-plane service ({@code HealthCheckedGrpcServer}), {@code
 * tandem.v1.PrefillWorker} or {@code tandem.v1.DecodeWorker}, and NOT_FOUND for the other. Each
 * probe uses a channel of its own, shut down after it.
 */
final class WorkerProbe {
    /** What an endpoint turned out to be. */
    enum Role { PREFILL, DECODE, NONE }

    /**
     * @param role   the worker's role, or {@link Role#NONE} if no worker serves there (yet)
     * @param detail why not, for the log (the health statuses or the call's error); empty for a worker
     */
    record Result(Role role, String detail) {}

    private final Duration timeout;

    /** @param timeout deadline of each health check */
    WorkerProbe(Duration timeout) {
        this.timeout = timeout;
    }

    /**
     * Probes every endpoint at once and waits for all of them (at most about {@code timeout}).
     *
     * @return each endpoint's result, in the order given
     * @throws InterruptedException if interrupted while waiting (the channels are shut down)
     */
    Map<HostPort, Result> probe(List<HostPort> endpoints) throws InterruptedException {
        List<ManagedChannel> channels = new ArrayList<>();
        Map<HostPort, List<ListenableFuture<HealthCheckResponse>>> checks = new LinkedHashMap<>();
        try {
            for (HostPort e : endpoints) {
                ManagedChannel channel = Grpc.newChannelBuilderForAddress(e.host(), e.port(),
                        InsecureChannelCredentials.create()).build();
                channels.add(channel);
                HealthGrpc.HealthFutureStub health = HealthGrpc.newFutureStub(channel);
                checks.put(e, List.of(check(health, PrefillWorkerGrpc.SERVICE_NAME), check(health, DecodeWorkerGrpc.SERVICE_NAME)));
            }
            Map<HostPort, Result> out = new LinkedHashMap<>();
            for (Map.Entry<HostPort, List<ListenableFuture<HealthCheckResponse>>> e : checks.entrySet()) {
                String prefill = status(e.getValue().get(0));
                String decode = status(e.getValue().get(1));
                Role role = prefill.equals(ServingStatus.SERVING.name()) ? Role.PREFILL
                        : decode.equals(ServingStatus.SERVING.name()) ? Role.DECODE : Role.NONE;
                out.put(e.getKey(), new Result(role, role != Role.NONE ? ""
                        : "health of " + PrefillWorkerGrpc.SERVICE_NAME + ": " + prefill + ", of "
                                + DecodeWorkerGrpc.SERVICE_NAME + ": " + decode));
            }
            return out;
        } finally {
            for (ManagedChannel c : channels) {
                c.shutdownNow();
            }
        }
    }

    private ListenableFuture<HealthCheckResponse> check(HealthGrpc.HealthFutureStub health, String service) {
        return health.withDeadlineAfter(timeout.toNanos(), TimeUnit.NANOSECONDS)
                .check(HealthCheckRequest.newBuilder().setService(service).build());
    }

    /** The serving status's name, or the call's status code and description if it failed. */
    private static String status(ListenableFuture<HealthCheckResponse> check) throws InterruptedException {
        try {
            return check.get().getStatus().name();
        } catch (ExecutionException e) {
            Status s = Status.fromThrowable(e.getCause());
            return s.getCode() + (s.getDescription() != null ? " (" + s.getDescription() + ")" : "");
        }
    }
}
