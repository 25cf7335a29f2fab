package io.tandem.router.discovery;

import io.tandem.control.HostPort;
import io.tandem.router.worker.DecodeWorkerClient;
import io.tandem.router.worker.PrefillWorkerClient;
import io.tandem.router.worker.WorkerClient;
import io.tandem.router.worker.WorkerPool;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps the router's pools in step with DNS ({@code --discovery dns:NAME[:PORT]}, DESIGN.md §2): a
 * Kubernetes headless Service answers a lookup of its name with one address per ready pod. Every
 * {@code interval} each target's name is looked up afresh and diffed against the workers discovery
 * put in the pools ({@link PoolDiff}):
 *
 * <ul>
 *   <li>a new endpoint (address × port) is probed ({@link WorkerProbe}): one whose health says its
 *       prefill or decode service is SERVING joins that pool as a new gRPC worker client (with its
 *       own load polls); one that does not answer as a worker is probed again next round;</li>
 *   <li>a known endpoint missing from the answer leaves its pool ({@link WorkerPool#remove}): no
 *       new request goes to it, and its client is closed once the requests on it have ended, never
 *       under a running stream.</li>
 * </ul>
 *
 * A name whose lookup fails (no such name, resolver down) keeps the endpoints it last had: an
 * outage of DNS does not empty the pools, and dead workers leave through their failed load polls
 * as static ones do. Static workers are never probed or removed. The JVM's own name cache must not
 * outlive a round: the router sets {@code networkaddress.cache.ttl} to 0 when discovery is on.
 *
 * <p>Rounds run one at a time on a thread of their own ({@code tandem-discovery}); the first one
 * runs in {@link #start()}, so the pools hold what DNS lists before the router serves.
 */
public final class DnsDiscovery implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(DnsDiscovery.class);
    /** Deadline of a probe's health checks. */
    static final Duration PROBE_TIMEOUT = Duration.ofSeconds(2);

    /** Looks a name up; {@code InetAddress::getAllByName} in production. */
    @FunctionalInterface
    public interface Resolver {
        /** @throws UnknownHostException if the name has no address (or the lookup failed) */
        InetAddress[] resolve(String name) throws UnknownHostException;
    }

    private final List<DiscoveryTarget> targets;
    private final Duration interval;
    private final Resolver resolver;
    private final WorkerProbe probe = new WorkerProbe(PROBE_TIMEOUT);
    private final Function<HostPort, PrefillWorkerClient> newPrefill;
    private final Function<HostPort, DecodeWorkerClient> newDecode;
    private final WorkerPool<PrefillWorkerClient> prefillPool;
    private final WorkerPool<DecodeWorkerClient> decodePool;
    private final Set<HostPort> excluded;
    private final ScheduledExecutorService thread = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "tandem-discovery");
        t.setDaemon(true);
        return t;
    });
    // Owned by the round being run (one at a time).
    /** Endpoints whose workers discovery put in a pool, with the worker and the target that found them. */
    private final Map<HostPort, Joined> known = new LinkedHashMap<>();
    /** Each target's endpoints at its last successful lookup. */
    private final Map<DiscoveryTarget, Set<HostPort>> lastFound = new HashMap<>();
    /** Endpoints already logged as answering as no worker, so that the retries every round stay quiet. */
    private final Set<HostPort> reportedNotWorker = new HashSet<>();
    /** Targets whose failing lookup was logged, until it succeeds again. */
    private final Set<DiscoveryTarget> reportedLookupFailure = new HashSet<>();

    /**
     * @param interval   time between the end of one round and the start of the next
     * @param resolver   the name lookup (a fresh one each round, see the class comment on caching)
     * @param newPrefill opens a client to a prefill worker found at an endpoint
     * @param newDecode  opens a client to a decode worker found at an endpoint
     * @param excluded   endpoints of the static workers (as written and as resolved), never probed
     */
    public DnsDiscovery(List<DiscoveryTarget> targets, Duration interval, Resolver resolver,
                        Function<HostPort, PrefillWorkerClient> newPrefill, Function<HostPort, DecodeWorkerClient> newDecode,
                        WorkerPool<PrefillWorkerClient> prefillPool, WorkerPool<DecodeWorkerClient> decodePool,
                        Set<HostPort> excluded) {
        if (targets.isEmpty()) {
            throw new IllegalArgumentException("no discovery target");
        }
        if (interval.isNegative() || interval.isZero()) {
            throw new IllegalArgumentException("discovery interval must be > 0, got " + interval);
        }
        this.targets = List.copyOf(targets);
        this.interval = interval;
        this.resolver = resolver;
        this.newPrefill = newPrefill;
        this.newDecode = newDecode;
        this.prefillPool = prefillPool;
        this.decodePool = decodePool;
        this.excluded = Set.copyOf(excluded);
    }

    /**
     * Runs the first round on the caller's thread, then one every {@code interval} on the
     * discovery thread.
     *
     * @throws InterruptedException if interrupted during the first round
     */
    public void start() throws InterruptedException {
        runRound();
        thread.scheduleWithFixedDelay(this::runScheduledRound, interval.toNanos(), interval.toNanos(), TimeUnit.NANOSECONDS);
    }

    private void runScheduledRound() {
        try {
            runRound();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt(); // close() stops us
        } catch (RuntimeException e) {
            // a failed round must not end the schedule: the next one starts from what is known
            LOG.error("discovery round failed; trying again in {} ms", interval.toMillis(), e);
        }
    }

    /** One lookup, diff, probe and pool update. Package-private for tests; not concurrent with itself. */
    synchronized void runRound() throws InterruptedException {
        Map<HostPort, DiscoveryTarget> found = lookUpAll();
        reportedNotWorker.retainAll(found.keySet());
        PoolDiff diff = PoolDiff.between(known.keySet(), found.keySet(), excluded);
        for (HostPort gone : diff.left()) {
            leave(gone);
        }
        if (diff.joined().isEmpty()) {
            return;
        }
        Map<HostPort, WorkerProbe.Result> probed = probe.probe(new ArrayList<>(diff.joined()));
        for (Map.Entry<HostPort, WorkerProbe.Result> e : probed.entrySet()) {
            join(e.getKey(), found.get(e.getKey()), e.getValue());
        }
    }

    /** Every endpoint of every target, with the first target that lists it. */
    private Map<HostPort, DiscoveryTarget> lookUpAll() {
        Map<HostPort, DiscoveryTarget> found = new LinkedHashMap<>();
        for (DiscoveryTarget t : targets) {
            Set<HostPort> endpoints;
            try {
                InetAddress[] addresses = resolver.resolve(t.name());
                endpoints = new LinkedHashSet<>();
                for (InetAddress a : addresses) {
                    for (int port : t.ports()) {
                        endpoints.add(new HostPort(a.getHostAddress(), port));
                    }
                }
                lastFound.put(t, endpoints);
                if (reportedLookupFailure.remove(t)) {
                    LOG.info("discovery: {} resolves again ({} addresses)", t, addresses.length);
                }
            } catch (UnknownHostException e) {
                endpoints = lastFound.getOrDefault(t, Set.of());
                if (reportedLookupFailure.add(t)) {
                    LOG.warn("discovery: looking up {} failed ({}); keeping its {} endpoints of the last lookup", t,
                            e.getMessage(), endpoints.size());
                }
            }
            for (HostPort e : endpoints) {
                found.putIfAbsent(e, t);
            }
        }
        return found;
    }

    private void join(HostPort endpoint, DiscoveryTarget target, WorkerProbe.Result result) {
        switch (result.role()) {
            case PREFILL -> {
                PrefillWorkerClient client = newPrefill.apply(endpoint);
                prefillPool.add(client);
                known.put(endpoint, new Joined(client, WorkerProbe.Role.PREFILL, target));
            }
            case DECODE -> {
                DecodeWorkerClient client = newDecode.apply(endpoint);
                decodePool.add(client);
                known.put(endpoint, new Joined(client, WorkerProbe.Role.DECODE, target));
            }
            case NONE -> {
                if (reportedNotWorker.add(endpoint)) {
                    LOG.info("discovery: {} ({}) does not answer as a worker yet ({}); probing it every {} ms", endpoint,
                            target, result.detail(), interval.toMillis());
                }
                return;
            }
        }
        reportedNotWorker.remove(endpoint);
        LOG.info("discovery: {} worker at {} joined the pool ({})", role(result.role()), endpoint, target);
    }

    private void leave(HostPort endpoint) {
        Joined j = known.remove(endpoint);
        int held = switch (j.role()) {
            case PREFILL -> prefillPool.remove((PrefillWorkerClient) j.client());
            case DECODE -> decodePool.remove((DecodeWorkerClient) j.client());
            case NONE -> throw new IllegalStateException("a worker of no role joined at " + endpoint);
        };
        LOG.info("discovery: {} worker {} at {} left {}; no new request goes to it, {} still run on it",
                role(j.role()), j.client().workerId(), endpoint, j.target(), Math.max(0, held));
    }

    private static String role(WorkerProbe.Role role) {
        return role.name().toLowerCase(java.util.Locale.ROOT);
    }

    /** Endpoints whose workers discovery has put in a pool (for tests and logs). */
    synchronized Set<HostPort> knownEndpoints() {
        return Set.copyOf(known.keySet());
    }

    /**
     * Stops the rounds (one running is interrupted) and waits for the thread; the workers stay in
     * their pools, whose owner closes them. Idempotent.
     */
    @Override
    public void close() {
        thread.shutdownNow();
        try {
            if (!thread.awaitTermination(PROBE_TIMEOUT.toMillis() * 2, TimeUnit.MILLISECONDS)) {
                LOG.warn("discovery thread still runs after close");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** A worker discovery put in a pool. */
    private record Joined(WorkerClient client, WorkerProbe.Role role, DiscoveryTarget target) {}
}
