package io.tandem.metrics;

import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.tandem.engine.EngineStats;
import java.util.function.Supplier;

/**
 * Load gauges of one engine, read from its published {@link EngineStats} when scraped, with the
 * names vLLM uses ({@code num_requests_running}, {@code num_requests_waiting},
 * {@code kv_cache_usage_perc}, counters {@code prefix_cache_queries_total},
 * {@code prefix_cache_hits_total}, {@code num_preemptions_total}) under the {@code tandem:} prefix,
 * plus the raw free/total block counts. Labels: {@code model_name}, {@code role}.
 */
public final class EngineMetrics {
    private EngineMetrics() {}

    /** Registers the gauges of several engines; each is {@code (role, stats)}. */
    public static void register(PrometheusRegistry registry, String modelName, String[] roles,
                                java.util.List<Supplier<EngineStats>> stats) {
        gauge(registry, "tandem:num_requests_running", "Sequences being computed.", modelName, roles, stats,
                EngineStats::numRunning);
        gauge(registry, "tandem:num_requests_waiting", "Sequences admitted and waiting.", modelName, roles, stats,
                EngineStats::numWaiting);
        gauge(registry, "tandem:kv_cache_usage_perc", "Fraction of KV blocks in use (1 = full).", modelName, roles,
                stats, EngineStats::kvCacheUsage);
        gauge(registry, "tandem:kv_cache_free_blocks", "Free KV blocks.", modelName, roles, stats,
                EngineStats::numFreeBlocks);
        gauge(registry, "tandem:kv_cache_total_blocks", "All KV blocks.", modelName, roles, stats,
                EngineStats::numTotalBlocks);
        counter(registry, "tandem:prefix_cache_queries", "Prompt tokens looked up in the prefix cache.", modelName,
                roles, stats, EngineStats::prefixCacheQueries);
        counter(registry, "tandem:prefix_cache_hits", "Prompt tokens found in the prefix cache.", modelName, roles,
                stats, EngineStats::prefixCacheHits);
        counter(registry, "tandem:num_preemptions", "Sequences preempted for lack of KV blocks.", modelName, roles,
                stats, EngineStats::numPreemptions);
    }

    private static void counter(PrometheusRegistry registry, String name, String help, String modelName, String[] roles,
                                java.util.List<Supplier<EngineStats>> stats,
                                java.util.function.ToLongFunction<EngineStats> value) {
        CounterWithCallback.builder()
                .name(name)
                .help(help)
                .labelNames("model_name", "role")
                .callback(cb -> {
                    for (int i = 0; i < roles.length; i++) {
                        cb.call(value.applyAsLong(stats.get(i).get()), modelName, roles[i]);
                    }
                })
                .register(registry);
    }

    private static void gauge(PrometheusRegistry registry, String name, String help, String modelName, String[] roles,
                              java.util.List<Supplier<EngineStats>> stats,
                              java.util.function.ToDoubleFunction<EngineStats> value) {
        GaugeWithCallback.builder()
                .name(name)
                .help(help)
                .labelNames("model_name", "role")
                .callback(cb -> {
                    for (int i = 0; i < roles.length; i++) {
                        cb.call(value.applyAsDouble(stats.get(i).get()), modelName, roles[i]);
                    }
                })
                .register(registry);
    }
}
