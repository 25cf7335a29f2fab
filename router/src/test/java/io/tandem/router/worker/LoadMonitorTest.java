package io.tandem.router.worker;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.stub.StreamObserver;
import io.tandem.control.HostPort;
import io.tandem.kvcache.BlockHasher;
import io.tandem.proto.v1.LoadReport;
import io.tandem.proto.v1.LoadRequest;
import io.tandem.proto.v1.PrefillWorkerGrpc;
import io.tandem.proto.v1.WorkerRole;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Pool membership as the router's load polls see it, against a real gRPC server on loopback that
 * serves {@code grpc.health.v1} and {@code GetLoad}: the report's cached block hashes reach the
 * policy, a worker that stops answering leaves the pool, and one started again on its port rejoins.
 */
@Timeout(30)
class LoadMonitorTest {
    private static final String MODEL = "stories260K";

    private final ScheduledExecutorService scheduler = Executors.newSingleThreadScheduledExecutor();
    private final List<Server> servers = new ArrayList<>();
    private GrpcPrefillWorkerClient client;

    @AfterEach
    void stop() throws InterruptedException {
        if (client != null) {
            client.close();
        }
        for (Server server : servers) {
            server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
        scheduler.shutdownNow();
    }

    @Test
    void shouldDropAWorkerThatStopsAnsweringAndTakeItBackWhenItServesAgainOnItsPort() throws Exception {
        int[] prompt = KvAwarePolicyTest.prompt(130, 1);
        LoadReport report = reportCaching(prompt);
        Server first = serve(0, new HealthStatusManager(), report);
        int port = first.getPort();
        client = new GrpcPrefillWorkerClient(new HostPort("127.0.0.1", port), new KvAddressBook(), scheduler,
                Duration.ofSeconds(10));
        KvAwarePolicy policy = new KvAwarePolicy(MODEL, 1.0);

        await(() -> client.load().healthy());
        assertThat(client.workerId()).isEqualTo("prefill-a");
        assertThat(client.load().queuedPrefillTokens()).isEqualTo(40);
        assertThat(client.load().cachedBlockHashes().blockSize()).isEqualTo(16);
        PrefillRoute route = policy.choosePrefill(List.of(client), prompt, null);
        assertThat(route.numPrefillTokens()).as("the reported 8 blocks are cached").isEqualTo(130 - 8 * 16);
        policy.prefillEnded(route);

        first.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        await(() -> !client.load().healthy());
        assertThat(policy.choosePrefill(List.of(client), prompt, null)).isNull();

        serve(port, new HealthStatusManager(), report);
        await(() -> client.load().healthy());
        assertThat(policy.choosePrefill(List.of(client), prompt, null).worker()).isSameAs(client);
    }

    @Test
    void shouldDropAWorkerAtOnceWhenItsHealthSaysNotServing() throws Exception {
        HealthStatusManager health = new HealthStatusManager();
        Server server = serve(0, health, reportCaching(new int[0]));
        client = new GrpcPrefillWorkerClient(new HostPort("127.0.0.1", server.getPort()), new KvAddressBook(), scheduler,
                Duration.ofSeconds(10));
        await(() -> client.load().healthy());

        health.setStatus(PrefillWorkerGrpc.SERVICE_NAME, ServingStatus.NOT_SERVING);
        await(() -> !client.load().healthy());
        assertThat(new RoundRobinPolicy().choosePrefill(List.of(client), new int[] {1}, null)).isNull();
    }

    /** A prefill worker's report listing the full blocks of {@code prompt} as cached. */
    private static LoadReport reportCaching(int[] prompt) {
        BlockHasher hasher = new BlockHasher(16, MODEL);
        long[] hashes = new long[prompt.length / 16];
        hasher.hashFullBlocks(prompt, prompt.length, hasher.extraHash(null), hashes);
        LoadReport.Builder report = LoadReport.newBuilder().setWorkerId("prefill-a").setEpoch(1)
                .setRole(WorkerRole.WORKER_ROLE_PREFILL).setQueuedPrefillTokens(40).setNumFreeBlocks(100)
                .setNumTotalBlocks(100).setBlockSize(16);
        for (long h : hashes) {
            report.addCachedBlockHashes(h);
        }
        return report.build();
    }

    private Server serve(int port, HealthStatusManager health, LoadReport report) throws IOException {
        health.setStatus(PrefillWorkerGrpc.SERVICE_NAME, ServingStatus.SERVING);
        Server server = Grpc.newServerBuilderForPort(port, InsecureServerCredentials.create())
                .addService(health.getHealthService())
                .addService(new PrefillWorkerGrpc.PrefillWorkerImplBase() {
                    @Override
                    public void getLoad(LoadRequest request, StreamObserver<LoadReport> out) {
                        out.onNext(report);
                        out.onCompleted();
                    }
                })
                .build()
                .start();
        servers.add(server);
        return server;
    }

    private static void await(BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError("the condition never held");
            }
            Thread.sleep(10);
        }
    }
}
