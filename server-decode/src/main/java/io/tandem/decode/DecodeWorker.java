package io.tandem.decode;

import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.tandem.control.HealthCheckedGrpcServer;
import io.tandem.engine.DecodeEngine;
import io.tandem.engine.EngineConfig;
import io.tandem.engine.backend.Backend;
import io.tandem.engine.model.LlamaModel;
import io.tandem.kvcache.transfer.KvTransport;
import io.tandem.metrics.EngineMetrics;
import io.tandem.metrics.KvTransferMetrics;
import io.tandem.metrics.MetricsHttpServer;
import io.tandem.proto.v1.DecodeWorkerGrpc;
import java.io.IOException;
import java.time.Duration;
import java.util.List;

/**
 * The {@code tandem decode} process (DESIGN.md §2): a {@link DecodeEngine} pulling prompt KV
 * through a {@link KvTransport}, behind the {@code tandem.v1.DecodeWorker} gRPC service with
 * {@code grpc.health.v1}, and its engine gauges at {@code /metrics} ({@code role="decode"}), with
 * {@code tandem:kv_page_summaries_received_total} (sequences whose prompt's page summaries arrived).
 *
 * <p>Owns the engine and the servers; the model, the backend, the transport and the directory
 * belong to the caller (the network transport is built over the directory, which this worker's
 * service fills from incoming handles). {@link #close()}: gRPC (graceful), metrics, then the
 * engine, which ends every sequence and releases their handles.
 */
public final class DecodeWorker implements AutoCloseable {
    private final String workerId;
    private final long epoch = System.currentTimeMillis();
    private final LlamaModel model;
    private final DecodeEngine engine;
    private final LeaseRenewingTransport transport;
    private final KvSourceDirectory directory;
    private final PrometheusRegistry registry = new PrometheusRegistry();
    private HealthCheckedGrpcServer grpc;
    private MetricsHttpServer metrics;
    private boolean closed;

    /**
     * As the full constructor, renewing held leases every third of {@code config.leaseTimeout()}
     * (for deployments whose prefill workers share that lease timeout, as in tests).
     *
     * @param transport pulls, renews and releases prompt KV
     * @param directory data-plane addresses of prefill workers, learned from handles
     */
    public DecodeWorker(LlamaModel model, Backend backend, EngineConfig config, String workerId, KvTransport transport,
                        KvSourceDirectory directory) {
        this(model, backend, config, workerId, transport, directory, config.leaseTimeout().dividedBy(3));
    }

    /**
     * Allocates the KV cache and starts the engine thread; {@link #start} opens the ports.
     *
     * @param transport          pulls, renews and releases prompt KV
     * @param directory          data-plane addresses of prefill workers, learned from handles
     * @param leaseRenewInterval how often the lease of each held handle is renewed; below the prefill
     *                           workers' lease timeout (a third of it: two renewals may be lost)
     */
    public DecodeWorker(LlamaModel model, Backend backend, EngineConfig config, String workerId, KvTransport transport,
                        KvSourceDirectory directory, Duration leaseRenewInterval) {
        this.workerId = workerId;
        this.model = model;
        this.directory = directory;
        KvTransferMetrics kvMetrics = new KvTransferMetrics(registry, model.id());
        this.transport = new LeaseRenewingTransport(new MeteredKvTransport(transport, kvMetrics), leaseRenewInterval,
                kvMetrics::recordRenewals);
        this.engine = new DecodeEngine(model, backend, config, this.transport);
        kvMetrics.registerLoadRecomputes(engine::numKvLoadRecomputes);
        EngineMetrics.register(registry, model.id(), new String[] {"decode"}, List.of(engine::stats));
        CounterWithCallback.builder()
                .name("tandem:kv_page_summaries_received")
                .help("Sequences that received the page summaries (per page and KV head, min and max of K) of their "
                        + "prompt's KV, kept for query-aware demand paging.")
                .labelNames("model_name", "role")
                .callback(cb -> cb.call(engine.numPageSummariesReceived(), model.id(), "decode"))
                .register(registry);
    }

    /**
     * Serves gRPC on {@code host:grpcPort} and metrics on {@code host:metricsPort} (0 = any free port).
     *
     * @throws IOException if a port cannot be bound; what was started is closed again
     */
    public DecodeWorker start(String host, int grpcPort, int metricsPort) throws IOException {
        try {
            grpc = new HealthCheckedGrpcServer(DecodeWorkerGrpc.SERVICE_NAME,
                    new DecodeWorkerService(workerId, epoch, engine, model.config(), transport, directory)).start(host, grpcPort);
            metrics = new MetricsHttpServer(registry).start(host, metricsPort);
        } catch (IOException | RuntimeException e) {
            close();
            throw e;
        }
        return this;
    }

    public DecodeEngine engine() {
        return engine;
    }

    public String workerId() {
        return workerId;
    }

    /** The bound gRPC port. */
    public int grpcPort() {
        return grpc.port();
    }

    /** The bound metrics port. */
    public int metricsPort() {
        return metrics.port();
    }

    /** Stops serving, then the engine. Idempotent. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (grpc != null) {
            grpc.close();
        }
        if (metrics != null) {
            metrics.close();
        }
        engine.close();
        transport.close();
    }

    /** Handles whose lease this worker holds and renews now (accepted, not yet released). */
    public int numLeasesHeld() {
        return transport.numHeld();
    }
}
