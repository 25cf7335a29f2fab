package io.tandem.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;
import org.junit.jupiter.api.Test;

class ResultTableTest {

    private static final LatencyStats STATS = new LatencyStats(3, 12.345, 1, 10, 20, 30);

    private static BenchConfig config(int maxConcurrency, GoodputSlo slo) {
        return new BenchConfig("openai", "http://127.0.0.1:8000", "completions", "m", 50, maxConcurrency, 20, "random",
                (Path) null, 32, 16, 0, 0, TokenIdRange.DEFAULT, 0, Duration.ofSeconds(600), slo, OffsetDateTime.now());
    }

    private static BenchmarkMetrics metrics(OptionalDouble goodput, Map<String, Integer> reasons) {
        return new BenchmarkMetrics(18, 2, reasons, 576, 288, 1.5, 12, goodput, 192, 576, STATS, STATS, STATS, STATS);
    }

    private static List<String> print(BenchConfig config, BenchmarkMetrics metrics) {
        StringWriter out = new StringWriter();
        ResultTable.print(new PrintWriter(out), config, metrics);
        return out.toString().lines().toList();
    }

    @Test
    void shouldCentreBannersAsVllmPrintsThem() {
        assertThat(ResultTable.banner(" Serving Benchmark Result ", '=')).isEqualTo("============ Serving Benchmark Result ============");
        assertThat(ResultTable.banner("Time per Output Token (excl. 1st token)", '-'))
                .isEqualTo("-----Time per Output Token (excl. 1st token)------");
    }

    @Test
    void shouldPrintEveryFigureWithFortyColumnLabels() {
        List<String> lines = print(config(BenchmarkRunner.UNLIMITED_CONCURRENCY, GoodputSlo.NONE),
                metrics(OptionalDouble.empty(), Map.of("HTTP 429: overloaded", 2)));

        assertThat(lines).startsWith(
                "============ Serving Benchmark Result ============",
                "Successful requests:                     18",
                "Failed requests:                         2",
                "       2 x HTTP 429: overloaded",
                "Request rate configured (req/s):         50.00",
                "Benchmark duration (s):                  1.50",
                "Total input tokens:                      576",
                "Total generated tokens:                  288",
                "Request throughput (req/s):              12.00",
                "Output token throughput (tok/s):         192.00",
                "Total Token throughput (tok/s):          576.00",
                "---------------Time to First Token----------------",
                "Mean TTFT (ms):                          12.35",
                "Median TTFT (ms):                        10.00",
                "P90 TTFT (ms):                           20.00",
                "P99 TTFT (ms):                           30.00");
        assertThat(lines).contains("Mean TPOT (ms):                          12.35", "P99 ITL (ms):                            30.00",
                "Median E2EL (ms):                        10.00");
        assertThat(lines).last().isEqualTo("=".repeat(50));
        assertThat(lines).noneMatch(l -> l.startsWith("Request goodput") || l.startsWith("Maximum request concurrency"));
    }

    @Test
    void shouldPrintGoodputAndConcurrencyOnlyWhenConfigured() {
        List<String> lines = print(config(4, GoodputSlo.parse(List.of("ttft:100"))), metrics(OptionalDouble.of(7.5), Map.of()));

        assertThat(lines).contains("Maximum request concurrency:             4", "Request goodput (req/s):                 7.50");
    }
}
