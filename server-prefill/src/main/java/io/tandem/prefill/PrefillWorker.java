package io.tandem.prefill;

import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.tandem.control.HostPort;
import io.tandem.control.WorkerGrpcServer;
import io.tandem.engine.EngineConfig;
import io.tandem.engine.PrefillEngine;
import io.tandem.engine.backend.Backend;
import io.tandem.engine.model.LlamaModel;
import io.tandem.metrics.EngineMetrics;
import io.tandem.metrics.MetricsHttpServer;
import java.io.IOException;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@code tandem prefill} process (DESIGN.md §2): a {@link PrefillEngine} behind the
 * {@code tandem.v1.PrefillWorker} gRPC service with {@code grpc.health.v1}, its engine gauges at
 * {@code /metrics} ({@code role="prefill"}), and the address of its KV data plane in every handle
 * it exports.
 *
 * <p>Owns the engine and the servers; the model and the backend belong to the caller, which closes
 * them after this. {@link #close()} goes in reverse order of start-up: gRPC (graceful), metrics,
 * then the engine, which frees every block still leased.
 */
public final class PrefillWorker implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(PrefillWorker.class);

    private final LlamaModel model;
    private final PrefillEngine engine;
    private final PrometheusRegistry registry = new PrometheusRegistry();
    private WorkerGrpcServer grpc;
    private MetricsHttpServer metrics;
    private HostPort kvAddress;
    private boolean closed;

    /**
     * Allocates the KV cache and starts the engine thread; {@link #start} opens the ports.
     *
     * @param workerId the id in every exported handle and load report
     */
    public PrefillWorker(LlamaModel model, Backend backend, EngineConfig config, String workerId) {
        this.model = model;
        this.engine = new PrefillEngine(workerId, model, backend, config);
        EngineMetrics.register(registry, model.id(), new String[] {"prefill"}, List.of(engine::stats));
    }

    /**
     * Serves gRPC on {@code host:grpcPort} and metrics on {@code host:metricsPort} (0 = any free
     * port), advertising {@code advertisedHost:kvPort} as the KV data plane.
     *
     * @param advertisedHost the name decode workers reach this host by (not a wildcard address)
     * @throws IOException if a port cannot be bound; what was started is closed again
     */
    public PrefillWorker start(String host, String advertisedHost, int grpcPort, int kvPort, int metricsPort)
            throws IOException {
        try {
            // The Netty KV data plane (kvcache.transfer.KvPageServer) is not part of this build yet:
            // the port is advertised in handles so that decode workers learn it, but nothing listens.
            kvAddress = new HostPort(advertisedHost, kvPort);
            LOG.info("prefill worker {}: no KV data plane in this build; handles advertise {} but only in-process"
                    + " decode engines can read the pages", engine.workerId(), kvAddress);
            grpc = new WorkerGrpcServer(io.tandem.proto.v1.PrefillWorkerGrpc.SERVICE_NAME,
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

    /** The KV data-plane address put in handles. */
    public HostPort kvAddress() {
        return kvAddress;
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
    }
}
