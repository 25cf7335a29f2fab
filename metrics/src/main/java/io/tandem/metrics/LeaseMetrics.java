package io.tandem.metrics;

import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.tandem.engine.PrefillEngine;
import java.util.function.LongSupplier;
import java.util.function.ToLongFunction;

/**
 * A prefill worker's exported KV (DESIGN.md §3, §7), label {@code role="prefill"}, read when
 * scraped: {@code tandem:kv_leases_active} (handles under lease now) and the counters {@code
 * tandem:kv_leases_granted_total}, {@code _released_total}, {@code _expired_total} (freed at the
 * deadline, unreleased: a decode worker died or lost the handle) and {@code _renewed_total}; plus
 * the data plane's {@code tandem:kv_transfer_bytes_total} and {@code tandem:kv_transfer_pages_total}
 * (payload sent). Every series also carries {@code model_name}.
 */
public final class LeaseMetrics {
    private static final String ROLE = "prefill";

    private LeaseMetrics() {}

    /**
     * @param bytesSent KV payload bytes the page server has sent so far
     * @param pageBytes bytes of one page, to count pages from bytes (every page has that size)
     */
    public static void register(PrometheusRegistry registry, String modelName, PrefillEngine engine, LongSupplier bytesSent,
                                long pageBytes) {
        GaugeWithCallback.builder().name("tandem:kv_leases_active").help("Exported KV handles under lease.")
                .labelNames("model_name", "role")
                .callback(cb -> cb.call(engine.stats().numExported(), modelName, ROLE))
                .register(registry);
        counter(registry, "tandem:kv_leases_granted", "KV leases granted (handles exported).", modelName,
                engine, PrefillEngine::numLeasesGranted);
        counter(registry, "tandem:kv_leases_released", "KV leases ended by a release.", modelName, engine,
                PrefillEngine::numLeasesReleased);
        counter(registry, "tandem:kv_leases_expired", "KV leases freed at their deadline without a release.", modelName,
                engine, PrefillEngine::numLeasesExpired);
        counter(registry, "tandem:kv_leases_renewed", "Renewals of held KV leases.", modelName, engine,
                PrefillEngine::numLeasesRenewed);
        counter(registry, "tandem:kv_transfer_bytes", "KV payload bytes sent on the data plane.", modelName, engine,
                e -> bytesSent.getAsLong());
        counter(registry, "tandem:kv_transfer_pages", "KV pages (layer x block) sent on the data plane.", modelName,
                engine, e -> bytesSent.getAsLong() / pageBytes);
    }

    private static void counter(PrometheusRegistry registry, String name, String help, String modelName,
                                PrefillEngine engine, ToLongFunction<PrefillEngine> value) {
        CounterWithCallback.builder().name(name).help(help).labelNames("model_name", "role")
                .callback(cb -> cb.call(value.applyAsLong(engine), modelName, ROLE))
                .register(registry);
    }
}
