package io.tandem.router;

import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.tandem.engine.FinishReason;

/**
 * Request-level serving metrics with vLLM's names and bucket boundaries (vllm/v1/metrics/loggers.py),
 * under the {@code tandem:} prefix, label {@code model_name}:
 * histograms {@code time_to_first_token_seconds}, {@code inter_token_latency_seconds},
 * {@code e2e_request_latency_seconds}, {@code request_queue_time_seconds}; counters
 * {@code prompt_tokens_total}, {@code generation_tokens_total}, {@code request_success_total}
 * (label {@code finished_reason}). Thread-safe; recorded once per finished request.
 */
public final class ServingMetrics {
    private static final double[] TTFT_BUCKETS = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
        1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
    private static final double[] ITL_BUCKETS = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0,
        2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0};
    private static final double[] REQUEST_LATENCY_BUCKETS = {0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0,
        30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};

    private final String modelName;
    private final Histogram ttft;
    private final Histogram itl;
    private final Histogram e2e;
    private final Histogram queueTime;
    private final Counter promptTokens;
    private final Counter generationTokens;
    private final Counter requestSuccess;

    public ServingMetrics(PrometheusRegistry registry, String modelName) {
        this.modelName = modelName;
        ttft = histogram(registry, "tandem:time_to_first_token_seconds", "Time to first token: first token - arrival.", TTFT_BUCKETS);
        itl = histogram(registry, "tandem:inter_token_latency_seconds", "Time between consecutive output tokens.", ITL_BUCKETS);
        e2e = histogram(registry, "tandem:e2e_request_latency_seconds", "Arrival to last token.", REQUEST_LATENCY_BUCKETS);
        queueTime = histogram(registry, "tandem:request_queue_time_seconds", "Time waiting before the first prefill step.",
                REQUEST_LATENCY_BUCKETS);
        promptTokens = counter(registry, "tandem:prompt_tokens", "Prompt tokens processed.");
        generationTokens = counter(registry, "tandem:generation_tokens", "Tokens generated.");
        requestSuccess = Counter.builder().name("tandem:request_success").help("Requests finished, by reason.")
                .labelNames("model_name", "finished_reason").register(registry);
    }

    private Histogram histogram(PrometheusRegistry registry, String name, String help, double[] buckets) {
        return Histogram.builder().name(name).help(help).unit(null).classicOnly().classicUpperBounds(buckets)
                .labelNames("model_name").register(registry);
    }

    private static Counter counter(PrometheusRegistry registry, String name, String help) {
        return Counter.builder().name(name).help(help).labelNames("model_name").register(registry);
    }

    /**
     * Records one finished request.
     *
     * @param arrivalNanos {@link System#nanoTime()} when the router admitted it
     * @param queueNanos   time before its first prefill step
     * @param tokenNanos   {@link System#nanoTime()} of each output token, {@code [numTokens]}
     */
    public void recordFinished(long arrivalNanos, long queueNanos, long[] tokenNanos, int numTokens, int numPromptTokens,
                               FinishReason reason) {
        promptTokens.labelValues(modelName).inc(numPromptTokens);
        generationTokens.labelValues(modelName).inc(numTokens);
        requestSuccess.labelValues(modelName, reason.openAiName()).inc();
        queueTime.labelValues(modelName).observe(queueNanos / 1e9);
        if (numTokens == 0) {
            return;
        }
        ttft.labelValues(modelName).observe((tokenNanos[0] - arrivalNanos) / 1e9);
        var itlSeries = itl.labelValues(modelName);
        for (int i = 1; i < numTokens; i++) {
            itlSeries.observe((tokenNanos[i] - tokenNanos[i - 1]) / 1e9);
        }
        e2e.labelValues(modelName).observe((tokenNanos[numTokens - 1] - arrivalNanos) / 1e9);
    }
}
