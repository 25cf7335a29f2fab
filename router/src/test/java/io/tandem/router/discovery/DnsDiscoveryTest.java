package io.tandem.router.discovery;

import static org.assertj.core.api.Assertions.assertThat;

import io.tandem.control.HostPort;
import io.tandem.control.HealthCheckedGrpcServer;
import io.tandem.proto.v1.DecodeWorkerGrpc;
import io.tandem.proto.v1.PrefillWorkerGrpc;
import io.tandem.router.worker.DecodeWorkerClient;
import io.tandem.router.worker.GrpcDecodeWorkerClient;
import io.tandem.router.worker.GrpcPrefillWorkerClient;
import io.tandem.router.worker.KvAddressBook;
import io.tandem.router.worker.PrefillWorkerClient;
import io.tandem.router.worker.WorkerClient;
import io.tandem.router.worker.WorkerPool;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Discovery rounds against real worker gRPC servers ({@link HealthCheckedGrpcServer}: the workers' own
 * health service) on distinct loopback addresses at one port, as pods behind a headless Service;
 * the name's answer is the test's list of addresses (the real lookup through the JDK resolver is
 * {@code DiscoveryIT}'s). Pools hold real gRPC worker clients.
 */
@Timeout(60)
class DnsDiscoveryTest {
    private static final String NAME = "workers.test";

    private final ScheduledExecutorService polls = Executors.newSingleThreadScheduledExecutor();
    private final List<HealthCheckedGrpcServer> servers = new ArrayList<>();
    private final List<WorkerClient> removed = new CopyOnWriteArrayList<>();
    private final WorkerPool<PrefillWorkerClient> prefillPool = new WorkerPool<>("prefill", List.of(), removed::add, Runnable::run);
    private final WorkerPool<DecodeWorkerClient> decodePool = new WorkerPool<>("decode", List.of(), removed::add, Runnable::run);
    /** What DNS answers for {@link #NAME}; {@code null}: the lookup fails. */
    private volatile List<String> dns = List.of();
    private int port;

    @BeforeEach
    void pickPort() throws Exception {
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
    }

    @AfterEach
    void stop() {
        prefillPool.close();
        decodePool.close();
        servers.forEach(HealthCheckedGrpcServer::close);
        polls.shutdownNow();
    }

    @Test
    void shouldPutEachWorkerInThePoolOfItsRoleAndTakeOutThoseGoneFromDns() throws Exception {
        servePrefill("127.0.0.2");
        serveDecode("127.0.0.3");
        DnsDiscovery discovery = discovery(Set.of());
        dns = List.of("127.0.0.2", "127.0.0.3");

        discovery.runRound();

        assertThat(targets(prefillPool)).containsExactly(new HostPort("127.0.0.2", port));
        assertThat(targets(decodePool)).containsExactly(new HostPort("127.0.0.3", port));
        PrefillWorkerClient prefill = prefillPool.members().getFirst();

        dns = List.of("127.0.0.3");
        discovery.runRound();

        assertThat(prefillPool.members()).isEmpty();
        assertThat(removed).as("closed at once: no request held it").containsExactly(prefill);
        assertThat(targets(decodePool)).containsExactly(new HostPort("127.0.0.3", port));
        assertThat(discovery.knownEndpoints()).containsExactly(new HostPort("127.0.0.3", port));
    }

    @Test
    void shouldProbeAgainEachRoundAnAddressWhereNoWorkerServesYet() throws Exception {
        DnsDiscovery discovery = discovery(Set.of());
        dns = List.of("127.0.0.4");

        discovery.runRound();
        assertThat(prefillPool.members()).isEmpty();
        assertThat(decodePool.members()).isEmpty();

        serveDecode("127.0.0.4");
        discovery.runRound();

        assertThat(targets(decodePool)).containsExactly(new HostPort("127.0.0.4", port));
        assertThat(prefillPool.members()).isEmpty();
    }

    @Test
    void shouldKeepTheWorkersOfANameWhoseLookupFails() throws Exception {
        servePrefill("127.0.0.2");
        DnsDiscovery discovery = discovery(Set.of());
        dns = List.of("127.0.0.2");
        discovery.runRound();

        dns = null;
        discovery.runRound();

        assertThat(targets(prefillPool)).containsExactly(new HostPort("127.0.0.2", port));
        assertThat(removed).isEmpty();
    }

    @Test
    void shouldNotDiscoverAStaticWorkerAgain() throws Exception {
        servePrefill("127.0.0.2");
        servePrefill("127.0.0.5");
        DnsDiscovery discovery = discovery(Set.of(new HostPort("127.0.0.2", port)));
        dns = List.of("127.0.0.2", "127.0.0.5");

        discovery.runRound();

        assertThat(targets(prefillPool)).containsExactly(new HostPort("127.0.0.5", port));
    }

    private DnsDiscovery discovery(Set<HostPort> excluded) {
        KvAddressBook addresses = new KvAddressBook();
        return new DnsDiscovery(List.of(new DiscoveryTarget(NAME, List.of(port))), Duration.ofSeconds(5), this::resolve,
                p -> new GrpcPrefillWorkerClient(p, addresses, polls, Duration.ofSeconds(10)),
                d -> new GrpcDecodeWorkerClient(d, addresses, polls, Duration.ofSeconds(10)),
                prefillPool, decodePool, excluded);
    }

    private InetAddress[] resolve(String name) throws UnknownHostException {
        List<String> answer = dns;
        if (!name.equals(NAME) || answer == null) {
            throw new UnknownHostException(name);
        }
        InetAddress[] out = new InetAddress[answer.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = InetAddress.getByName(answer.get(i)); // literals: no lookup
        }
        return out;
    }

    private void servePrefill(String host) throws Exception {
        servers.add(new HealthCheckedGrpcServer(PrefillWorkerGrpc.SERVICE_NAME, new PrefillWorkerGrpc.PrefillWorkerImplBase() {})
                .start(host, port));
    }

    private void serveDecode(String host) throws Exception {
        servers.add(new HealthCheckedGrpcServer(DecodeWorkerGrpc.SERVICE_NAME, new DecodeWorkerGrpc.DecodeWorkerImplBase() {})
                .start(host, port));
    }

    private static List<HostPort> targets(WorkerPool<?> pool) {
        return pool.members().stream().map(w -> switch (w) {
            case GrpcPrefillWorkerClient p -> p.target();
            case GrpcDecodeWorkerClient d -> d.target();
            default -> throw new AssertionError(w);
        }).toList();
    }
}
