package io.tandem.bench;

import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;
import org.HdrHistogram.Histogram;

/**
 * The figures of one benchmark run, defined as {@code vllm bench serve} defines them (its
 * {@code calculate_metrics}), over the successful requests:
 * <ul>
 *   <li>TTFT = first token − send; E2EL = last token − send;</li>
 *   <li>TPOT = (E2EL − TTFT) / (output tokens − 1), for requests with more than one output token;</li>
 *   <li>ITL = every gap between consecutive token-carrying chunks, pooled over all requests;</li>
 *   <li>request throughput = completed / duration; output token throughput = Σ output tokens /
 *       duration; total token throughput = Σ (input + output tokens) / duration;</li>
 *   <li>goodput = requests meeting every {@link GoodputSlo} objective / duration.</li>
 * </ul>
 *
 * @param completed            successful requests
 * @param failed               failed requests
 * @param failureReasons       failure reason → requests, most frequent first
 * @param totalInputTokens     Σ prompt tokens of successful requests
 * @param totalOutputTokens    Σ output tokens of successful requests
 * @param durationSeconds      first send → last end
 * @param requestThroughput    requests/s
 * @param requestGoodput       good requests/s; empty when no objective was given
 * @param outputThroughput     output tokens/s
 * @param totalTokenThroughput (input + output) tokens/s
 */
public record BenchmarkMetrics(
        int completed,
        int failed,
        Map<String, Integer> failureReasons,
        long totalInputTokens,
        long totalOutputTokens,
        double durationSeconds,
        double requestThroughput,
        OptionalDouble requestGoodput,
        double outputThroughput,
        double totalTokenThroughput,
        LatencyStats ttft,
        LatencyStats tpot,
        LatencyStats itl,
        LatencyStats e2el) {

    private static final double NANOS_PER_SECOND = 1e9;

    public BenchmarkMetrics {
        failureReasons = Collections.unmodifiableMap(new LinkedHashMap<>(failureReasons));
    }

    /**
     * @param durationNanos the run's duration, {@code > 0}
     * @param slo           goodput objectives, {@link GoodputSlo#NONE} for none
     */
    public static BenchmarkMetrics compute(List<RequestResult> results, long durationNanos, GoodputSlo slo) {
        if (durationNanos <= 0) {
            throw new IllegalArgumentException("duration must be > 0 ns, got " + durationNanos);
        }
        Histogram ttft = LatencyStats.newHistogram();
        Histogram tpot = LatencyStats.newHistogram();
        Histogram itl = LatencyStats.newHistogram();
        Histogram e2el = LatencyStats.newHistogram();
        Map<String, Integer> reasons = new HashMap<>();
        int completed = 0;
        int good = 0;
        long input = 0;
        long output = 0;
        for (RequestResult result : results) {
            switch (result) {
                case RequestResult.Success s -> {
                    completed++;
                    input += s.promptTokens();
                    output += s.outputTokens();
                    LatencyStats.recordNanos(ttft, s.ttftNanos());
                    LatencyStats.recordNanos(e2el, s.e2elNanos());
                    if (s.hasTpot()) {
                        LatencyStats.recordNanos(tpot, s.tpotNanos());
                    }
                    for (long gap : s.itlNanos()) {
                        LatencyStats.recordNanos(itl, gap);
                    }
                    if (slo.isMetBy(s)) {
                        good++;
                    }
                }
                case RequestResult.Failure f -> reasons.merge(f.reason(), 1, Integer::sum);
            }
        }
        double seconds = durationNanos / NANOS_PER_SECOND;
        return new BenchmarkMetrics(completed, results.size() - completed, mostFrequentFirst(reasons), input, output,
                seconds, completed / seconds, slo.isSet() ? OptionalDouble.of(good / seconds) : OptionalDouble.empty(),
                output / seconds, (input + output) / seconds,
                LatencyStats.of(ttft), LatencyStats.of(tpot), LatencyStats.of(itl), LatencyStats.of(e2el));
    }

    private static Map<String, Integer> mostFrequentFirst(Map<String, Integer> reasons) {
        Map<String, Integer> sorted = new LinkedHashMap<>();
        reasons.entrySet().stream()
                .sorted(Map.Entry.<String, Integer>comparingByValue(Comparator.reverseOrder()).thenComparing(Map.Entry.comparingByKey()))
                .forEach(e -> sorted.put(e.getKey(), e.getValue()));
        return sorted;
    }
}
