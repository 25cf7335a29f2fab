package io.tandem.metrics;

import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.util.function.LongSupplier;

/**
 * The KV hand-off as a decode worker sees it (DESIGN.md §7), label {@code role="decode"}:
 * {@code tandem:kv_transfer_bytes_total} and {@code tandem:kv_transfer_pages_total} (pages of
 * completed pulls, a page being one layer of one block), {@code tandem:kv_transfer_seconds} (one
 * observation per completed pull, from its start to its last page), {@code
 * tandem:kv_transfer_failures_total{reason}} (a failed pull, by cause: the data plane's status in
 * lower case, such as {@code connection_lost} or {@code stale_epoch}, or {@code timeout}), {@code
 * tandem:kv_lease_renewals_total} (renewals sent for leases held while their request waits) and
 * {@code tandem:kv_load_recomputes_total} (prompts recomputed here after a failed pull). Every
 * series also carries {@code model_name}. Thread-safe.
 */
public final class KvTransferMetrics {
    /** Buckets of {@code kv_transfer_seconds}: 0.5 ms (a small prompt on loopback) to 10 s (the default transfer timeout). */
    private static final double[] SECONDS_BUCKETS = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
            2.5, 5, 10};
    private static final String ROLE = "decode";

    private final String modelName;
    private final Counter bytes;
    private final Counter pages;
    private final Histogram seconds;
    private final Counter failures;
    private final Counter renewals;

    private final PrometheusRegistry registry;

    /** Registers the series, but {@code kv_load_recomputes_total} (see {@link #registerLoadRecomputes}). */
    public KvTransferMetrics(PrometheusRegistry registry, String modelName) {
        this.registry = registry;
        this.modelName = modelName;
        bytes = Counter.builder().name("tandem:kv_transfer_bytes").help("KV payload bytes of completed pulls.")
                .labelNames("model_name", "role").register(registry);
        pages = Counter.builder().name("tandem:kv_transfer_pages").help("KV pages (layer x block) of completed pulls.")
                .labelNames("model_name", "role").register(registry);
        seconds = Histogram.builder().name("tandem:kv_transfer_seconds").help("Time of one completed KV pull.")
                .unit(null).classicOnly().classicUpperBounds(SECONDS_BUCKETS).labelNames("model_name", "role")
                .register(registry);
        failures = Counter.builder().name("tandem:kv_transfer_failures").help("KV pulls that failed, by reason.")
                .labelNames("model_name", "role", "reason").register(registry);
        renewals = Counter.builder().name("tandem:kv_lease_renewals")
                .help("Lease renewals sent for KV handles held while their request waits.")
                .labelNames("model_name", "role").register(registry);
        // Zero series, so that a scrape shows them before the first pull.
        bytes.labelValues(modelName, ROLE);
        pages.labelValues(modelName, ROLE);
        seconds.labelValues(modelName, ROLE);
        renewals.labelValues(modelName, ROLE);
    }

    /**
     * Registers {@code tandem:kv_load_recomputes_total}, read when scraped: the decode engine
     * counts them, and it is built after the transport these metrics count for.
     *
     * @param recomputes prompts recomputed after a failed pull so far
     */
    public void registerLoadRecomputes(LongSupplier recomputes) {
        CounterWithCallback.builder().name("tandem:kv_load_recomputes")
                .help("Prompts whose KV was computed here after a failed pull (--kv-load-failure-policy recompute).")
                .labelNames("model_name", "role")
                .callback(cb -> cb.call(recomputes.getAsLong(), modelName, ROLE))
                .register(registry);
    }

    /** A pull of {@code numPages} pages, {@code numBytes} bytes, completed after {@code nanos}. */
    public void recordPull(long numBytes, long numPages, long nanos) {
        bytes.labelValues(modelName, ROLE).inc(numBytes);
        pages.labelValues(modelName, ROLE).inc(numPages);
        seconds.labelValues(modelName, ROLE).observe(nanos / 1e9);
    }

    /** A pull failed; {@code reason} is a short lower-case cause ({@code connection_lost}, {@code timeout}, …). */
    public void recordFailure(String reason) {
        failures.labelValues(modelName, ROLE, reason).inc();
    }

    /** {@code n} lease renewals were sent. */
    public void recordRenewals(int n) {
        renewals.labelValues(modelName, ROLE).inc(n);
    }
}
