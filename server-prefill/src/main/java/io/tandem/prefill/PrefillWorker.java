package io.tandem.prefill;

import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.tandem.control.HostPort;
import io.tandem.control.HealthCheckedGrpcServer;
import io.tandem.engine.EngineConfig;
import io.tandem.engine.PrefillEngine;
import io.tandem.engine.backend.Backend;
import io.tandem.engine.model.LlamaModel;
import io.tandem.kvcache.transfer.KvPageServer;
import io.tandem.metrics.EngineMetrics;
import io.tandem.metrics.LeaseMetrics;
import io.tandem.metrics.MetricsHttpServer;
import java.io.IOException;
import java.time.Duration;
import java.util.List;

/**
 * The {@code tandem prefill} process (DESIGN.md §2): a {@link PrefillEngine} behind the
 * {@code tandem.v1.PrefillWorker} gRPC service with {@code grpc.health.v1}, a {@link KvPageServer}
 * (the KV data plane decode workers pull pages from, leases checked by the engine thread, see
 * {@link PrefillPageProvider}), and its engine gauges at {@code /metrics} ({@code role="prefill"}),
 * with {@code tandem:kv_pages_sent_during_prefill_total} (pages sent before their prefill ended).
 * Every handle it exports carries the data plane's bound address.
 *
 * <p>Owns the engine and the servers; the model and the backend belong to the caller, which closes
 * them after this. {@link #close()}: gRPC (graceful), the KV page server (its connections close,
 * pullers fail at once), metrics, then the engine, which frees every block still leased and closes
 * the KV memory the page server read from.
 */
public final class PrefillWorker implements AutoCloseable {
    /** I/O threads of the KV page server: pages are written from KV memory without a copy, so one keeps up with a NIC. */
    private static final int KV_IO_THREADS = 1;

    private final LlamaModel model;
    private final PrefillEngine engine;
    private final Duration kvServeDelay;
    private final PrometheusRegistry registry = new PrometheusRegistry();
    private HealthCheckedGrpcServer grpc;
    private volatile KvPageServer kvServer;
    private MetricsHttpServer metrics;
    private HostPort kvAddress;
    private boolean closed;

    /**
     * Allocates the KV cache and starts the engine thread; {@link #start} opens the ports.
     *
     * @param workerId the id in every exported handle and load report
     */
    public PrefillWorker(LlamaModel model, Backend backend, EngineConfig config, String workerId) {
        this(model, backend, config, workerId, Duration.ZERO);
    }

    /**
     * As {@link #PrefillWorker(LlamaModel, Backend, EngineConfig, String)}, holding every KV pull
     * {@code kvServeDelay} before serving it: a test-only throttle ({@code --kv-serve-delay}) that
     * keeps pulls in flight long enough for fault tests to hit them.
     */
    public PrefillWorker(LlamaModel model, Backend backend, EngineConfig config, String workerId, Duration kvServeDelay) {
        this(model, backend, config, workerId, kvServeDelay, true);
    }

    /**
     * As {@link #PrefillWorker(LlamaModel, Backend, EngineConfig, String, Duration)}.
     *
     * @param pageSummaries whether handles carry the page summaries of their prompt's keys
     *                      ({@code --kv-page-summaries}; see {@link PrefillEngine})
     */
    public PrefillWorker(LlamaModel model, Backend backend, EngineConfig config, String workerId, Duration kvServeDelay,
                         boolean pageSummaries) {
        this.model = model;
        this.kvServeDelay = kvServeDelay;
        this.engine = new PrefillEngine(workerId, model, backend, config, pageSummaries);
        EngineMetrics.register(registry, model.id(), new String[] {"prefill"}, List.of(engine::stats));
        LeaseMetrics.register(registry, model.id(), engine, () -> {
            KvPageServer server = kvServer;
            return server == null ? 0 : server.payloadBytesSent();
        }, engine.storage().spec().pageBytes());
    }

    /**
     * Serves the KV data plane on {@code host:kvPort}, gRPC on {@code host:grpcPort} and metrics on
     * {@code host:metricsPort} (0 = any free port), advertising {@code advertisedHost} and the KV
     * port bound in every handle. The data plane starts first, so no handle names a port that
     * does not listen yet.
     *
     * @param advertisedHost the name decode workers reach this host by (not a wildcard address)
     * @throws IOException if a port cannot be bound; what was started is closed again
     * @throws IllegalStateException if the KV port cannot be bound (naming it); likewise
     */
    public PrefillWorker start(String host, String advertisedHost, int grpcPort, int kvPort, int metricsPort)
            throws IOException {
        try {
            kvServer = new KvPageServer(new PrefillPageProvider(engine, kvServeDelay), KV_IO_THREADS).start(host, kvPort);
            kvAddress = new HostPort(advertisedHost, kvServer.port());
            KvPageServer pages = kvServer;
            CounterWithCallback.builder()
                    .name("tandem:kv_pages_sent_during_prefill")
                    .help("KV pages sent while their prompt's prefill was still computing (early handles): "
                            + "the transfer that overlapped the prefill.")
                    .labelNames("model_name", "role")
                    .callback(cb -> cb.call(pages.pagesSentWhileComputing(), model.id(), "prefill"))
                    .register(registry);
            grpc = new HealthCheckedGrpcServer(io.tandem.proto.v1.PrefillWorkerGrpc.SERVICE_NAME,
                    new PrefillWorkerService(engine, model.config(), kvAddress.toString())).start(host, grpcPort);
            metrics = new MetricsHttpServer(registry).start(host, metricsPort);
        } catch (IOException | RuntimeException e) {
            close();
            throw e;
        }
        return this;
    }

    public PrefillEngine engine() {
        return engine;
    }

    public String workerId() {
        return engine.workerId();
    }

    /** The bound gRPC port. */
    public int grpcPort() {
        return grpc.port();
    }

    /** The bound metrics port. */
    public int metricsPort() {
        return metrics.port();
    }

    /** The KV data-plane address put in handles: the advertised host and the bound port. */
    public HostPort kvAddress() {
        return kvAddress;
    }

    /** Payload bytes the KV page server has sent (all connections). */
    public long kvPayloadBytesSent() {
        return kvServer.payloadBytesSent();
    }

    /**
     * KV pages the page server sent while their prefill was still computing (early handles): how
     * much of the transfer overlapped the prefill.
     */
    public long kvPagesSentWhileComputing() {
        return kvServer.pagesSentWhileComputing();
    }

    /** Stops serving (gRPC, then the KV data plane), then the engine. Idempotent. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (grpc != null) {
            grpc.close();
        }
        // Before the engine: pages go to sockets straight out of the engine's KV memory.
        if (kvServer != null) {
            kvServer.close();
        }
        if (metrics != null) {
            metrics.close();
        }
        engine.close();
    }
}
