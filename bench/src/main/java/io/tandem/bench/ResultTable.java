package io.tandem.bench;

import java.io.PrintWriter;
import java.util.Locale;
import java.util.Map;

/**
 * The human-readable result, laid out as {@code vllm bench serve} prints it: a 50-column banner,
 * 40-column labels, one section per latency metric (mean, median, P90, P99).
 */
final class ResultTable {

    private static final int WIDTH = 50;

    private ResultTable() {}

    static void print(PrintWriter out, BenchConfig config, BenchmarkMetrics m) {
        out.println(banner(" Serving Benchmark Result ", '='));
        row(out, "Successful requests:", Integer.toString(m.completed()));
        row(out, "Failed requests:", Integer.toString(m.failed()));
        for (Map.Entry<String, Integer> reason : m.failureReasons().entrySet()) {
            out.printf(Locale.ROOT, "  %6d x %s%n", reason.getValue(), reason.getKey());
        }
        if (config.maxConcurrency() != BenchmarkRunner.UNLIMITED_CONCURRENCY) {
            row(out, "Maximum request concurrency:", Integer.toString(config.maxConcurrency()));
        }
        if (!Double.isNaN(config.requestRate())) {
            row(out, "Request rate configured (req/s):",
                    Double.isInfinite(config.requestRate()) ? "inf" : number(config.requestRate()));
        }
        row(out, "Benchmark duration (s):", number(m.durationSeconds()));
        row(out, "Total input tokens:", Long.toString(m.totalInputTokens()));
        row(out, "Total generated tokens:", Long.toString(m.totalOutputTokens()));
        row(out, "Request throughput (req/s):", number(m.requestThroughput()));
        if (m.requestGoodput().isPresent()) {
            row(out, "Request goodput (req/s):", number(m.requestGoodput().getAsDouble()));
        }
        row(out, "Output token throughput (tok/s):", number(m.outputThroughput()));
        row(out, "Total Token throughput (tok/s):", number(m.totalTokenThroughput()));
        latency(out, "Time to First Token", "TTFT", m.ttft());
        latency(out, "Time per Output Token (excl. 1st token)", "TPOT", m.tpot());
        latency(out, "Inter-token Latency", "ITL", m.itl());
        latency(out, "End-to-end Latency", "E2EL", m.e2el());
        out.println("=".repeat(WIDTH));
        out.flush();
    }

    private static void latency(PrintWriter out, String title, String name, LatencyStats stats) {
        out.println(banner(title, '-'));
        row(out, "Mean " + name + " (ms):", number(stats.meanMs()));
        row(out, "Median " + name + " (ms):", number(stats.medianMs()));
        row(out, "P90 " + name + " (ms):", number(stats.p90Ms()));
        row(out, "P99 " + name + " (ms):", number(stats.p99Ms()));
    }

    /** {@code title} centred in {@value #WIDTH} columns of {@code fill}, the odd one on the right (Python's {@code ^}). */
    static String banner(String title, char fill) {
        int pad = Math.max(0, WIDTH - title.length());
        return String.valueOf(fill).repeat(pad / 2) + title + String.valueOf(fill).repeat(pad - pad / 2);
    }

    private static void row(PrintWriter out, String label, String value) {
        out.printf(Locale.ROOT, "%-40s %s%n", label, value);
    }

    private static String number(double value) {
        return String.format(Locale.ROOT, "%.2f", value);
    }
}
