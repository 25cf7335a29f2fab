package io.tandem.app;

import io.tandem.control.HostPort;
import io.tandem.engine.model.LlamaModel;
import io.tandem.router.KvTransferMode;
import io.tandem.router.Router;
import io.tandem.router.ServingMetrics;
import io.tandem.router.discovery.DiscoveryTarget;
import io.tandem.router.discovery.DnsDiscovery;
import io.tandem.router.template.ChatTemplates;
import io.tandem.router.worker.DecodeWorkerClient;
import io.tandem.router.worker.GrpcDecodeWorkerClient;
import io.tandem.router.worker.GrpcPrefillWorkerClient;
import io.tandem.router.worker.KvAddressBook;
import io.tandem.router.worker.PrefillWorkerClient;
import io.tandem.router.worker.RoutingPolicy;
import io.tandem.router.worker.WorkerClient;
import io.tandem.router.worker.WorkerPool;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Executor;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;

/**
 * A router in front of remote prefill and decode workers ({@code tandem router}): gRPC worker
 * clients sharing one poll scheduler and one {@link KvAddressBook}, in pools that hold the static
 * workers ({@code --prefill}, {@code --decode}) and, with {@code --discovery}, the workers DNS lists
 * ({@link DnsDiscovery}). Closes in reverse order of construction (discovery, router, decode pool,
 * prefill pool, scheduler); the model is the caller's.
 */
final class RemoteDeployment implements AutoCloseable {
    final Router router;
    final WorkerPool<PrefillWorkerClient> prefillPool;
    final WorkerPool<DecodeWorkerClient> decodePool;
    private final DnsDiscovery discovery;
    private final ScheduledExecutorService scheduler = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "tandem-worker-polls");
        t.setDaemon(true);
        return t;
    });
    private boolean closed;

    /**
     * @param model             tokenizer, chat template and limits of the served model (the workers must serve the same file)
     * @param prefill           static prefill workers (may be empty with discovery)
     * @param decode            static decode workers (may be empty with discovery)
     * @param discoveryTargets  DNS names whose addresses are workers; empty for none
     * @param discoveryInterval time between two lookups of them
     * @param transferMode      when decode workers start pulling: after the prefill, or overlapping it
     * @param prefillTimeout    deadline of each {@code Prefill} call
     * @param decodeTimeout     deadline of each {@code Decode} call (a whole generation)
     */
    RemoteDeployment(LlamaModel model, List<HostPort> prefill, List<HostPort> decode, List<DiscoveryTarget> discoveryTargets,
                     Duration discoveryInterval, RoutingPolicy routing, KvTransferMode transferMode, int maxInFlight,
                     ServingMetrics metrics, Duration prefillTimeout, Duration decodeTimeout) {
        KvAddressBook addresses = new KvAddressBook();
        List<PrefillWorkerClient> prefillClients = new ArrayList<>();
        List<DecodeWorkerClient> decodeClients = new ArrayList<>();
        for (HostPort p : prefill) {
            prefillClients.add(new GrpcPrefillWorkerClient(p, addresses, scheduler, prefillTimeout));
        }
        for (HostPort d : decode) {
            decodeClients.add(new GrpcDecodeWorkerClient(d, addresses, scheduler, decodeTimeout));
        }
        // a drained worker is closed on a thread of its own, not on the transport thread of its last request
        Executor closer = r -> Thread.ofVirtual().name("tandem-worker-close").start(r);
        this.prefillPool = new WorkerPool<>("prefill", prefillClients, routing::workerRemoved, closer);
        this.decodePool = new WorkerPool<>("decode", decodeClients, routing::workerRemoved, closer);
        String bos = model.tokenizer().bosId() >= 0 ? model.tokenizer().tokenText(model.tokenizer().bosId()) : "";
        this.router = new Router(model, ChatTemplates.forTemplate(model.chatTemplate(), bos), prefillPool, decodePool,
                routing, transferMode, maxInFlight, metrics);
        Set<HostPort> statics = new LinkedHashSet<>(prefill);
        statics.addAll(decode);
        this.discovery = discoveryTargets.isEmpty() ? null : new DnsDiscovery(discoveryTargets, discoveryInterval,
                InetAddress::getAllByName,
                p -> new GrpcPrefillWorkerClient(p, addresses, scheduler, prefillTimeout),
                d -> new GrpcDecodeWorkerClient(d, addresses, scheduler, decodeTimeout),
                prefillPool, decodePool, withAddresses(statics));
    }

    /**
     * Starts discovery, if any: its first round runs now, so the pools hold what DNS lists.
     *
     * @throws InterruptedException if interrupted during the first round
     */
    void startDiscovery() throws InterruptedException {
        if (discovery != null) {
            discovery.start();
        }
    }

    /** The endpoints as written plus each at every address its name resolves to now (a static worker is not discovered again). */
    private static Set<HostPort> withAddresses(Set<HostPort> endpoints) {
        Set<HostPort> out = new LinkedHashSet<>(endpoints);
        for (HostPort e : endpoints) {
            try {
                for (InetAddress a : InetAddress.getAllByName(e.host())) {
                    out.add(new HostPort(a.getHostAddress(), e.port()));
                }
            } catch (UnknownHostException unresolved) {
                // its load polls report it; discovery cannot list a name that does not resolve
            }
        }
        return out;
    }

    /**
     * Waits until every worker in the pools has answered a load poll as healthy, or {@code timeout} passed.
     *
     * @return {@code role address} of each worker that is not healthy, for the log
     */
    List<String> awaitHealthy(Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        List<String> unhealthy = unhealthy();
        while (!unhealthy.isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(20);
            unhealthy = unhealthy();
        }
        return unhealthy;
    }

    private List<String> unhealthy() {
        List<String> out = new ArrayList<>();
        prefillPool.members().stream().filter(c -> !c.load().healthy()).forEach(c -> out.add("prefill " + target(c)));
        decodePool.members().stream().filter(c -> !c.load().healthy()).forEach(c -> out.add("decode " + target(c)));
        return out;
    }

    private static String target(WorkerClient c) {
        return switch (c) {
            case GrpcPrefillWorkerClient p -> p.target().toString();
            case GrpcDecodeWorkerClient d -> d.target().toString();
            default -> c.workerId();
        };
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (discovery != null) {
            discovery.close();
        }
        router.close();
        decodePool.close();
        prefillPool.close();
        scheduler.shutdownNow();
    }
}
