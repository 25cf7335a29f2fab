package io.tandem.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * The {@code --save-result} file: the configuration and every figure, with vLLM's key names
 * ({@code completed}, {@code request_throughput}, {@code mean_ttft_ms}, {@code p99_itl_ms}, …) plus
 * {@code failed}, {@code failure_reasons} and the P90s. Times are milliseconds, except
 * {@code duration} and the detailed per-request {@code ttfts} and {@code itls}, seconds, as vLLM.
 */
final class ResultJson {

    private static final ObjectMapper MAPPER = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    private static final double NANOS_PER_SECOND = 1e9;

    private ResultJson() {}

    /**
     * @param detailed whether to add per-request {@code input_lens}, {@code output_lens},
     *                 {@code ttfts}, {@code itls}, {@code e2els} and {@code errors}
     */
    static ObjectNode toJson(BenchConfig config, BenchmarkMetrics m, List<RequestResult> results, boolean detailed) {
        ObjectNode root = MAPPER.createObjectNode();
        root.put("date", config.date().toString());
        root.put("api", config.api());
        root.put("endpoint", config.endpoint());
        root.put("endpoint_type", config.endpointType());
        root.put("model_id", config.model());
        root.put("num_prompts", config.numPrompts());
        if (Double.isNaN(config.requestRate())) {
            root.put("request_rate", "trace");
        } else if (Double.isInfinite(config.requestRate())) {
            root.put("request_rate", "inf");
        } else {
            root.put("request_rate", config.requestRate());
        }
        if (config.maxConcurrency() == BenchmarkRunner.UNLIMITED_CONCURRENCY) {
            root.putNull("max_concurrency");
        } else {
            root.put("max_concurrency", config.maxConcurrency());
        }
        root.put("dataset_name", config.datasetName());
        root.put("dataset_path", config.datasetPath() == null ? null : config.datasetPath().toString());
        root.put("input_len", config.inputLen());
        root.put("output_len", config.outputLen());
        root.put("range_ratio", config.rangeRatio());
        root.put("prefix_len", config.prefixLen());
        root.put("token_id_range", config.tokenIdRange().toString());
        root.put("seed", config.seed());
        root.put("timeout_s", config.timeout().toMillis() / 1000.0);
        goodput(root, config.goodput());

        root.put("duration", m.durationSeconds());
        root.put("completed", m.completed());
        root.put("failed", m.failed());
        ObjectNode reasons = root.putObject("failure_reasons");
        for (Map.Entry<String, Integer> reason : m.failureReasons().entrySet()) {
            reasons.put(reason.getKey(), reason.getValue());
        }
        root.put("total_input_tokens", m.totalInputTokens());
        root.put("total_output_tokens", m.totalOutputTokens());
        root.put("request_throughput", m.requestThroughput());
        if (m.requestGoodput().isPresent()) {
            root.put("request_goodput", m.requestGoodput().getAsDouble());
        } else {
            root.putNull("request_goodput");
        }
        root.put("output_throughput", m.outputThroughput());
        root.put("total_token_throughput", m.totalTokenThroughput());
        latency(root, "ttft", m.ttft());
        latency(root, "tpot", m.tpot());
        latency(root, "itl", m.itl());
        latency(root, "e2el", m.e2el());
        if (detailed) {
            detail(root, results);
        }
        return root;
    }

    static void write(Path file, ObjectNode json) throws IOException {
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        MAPPER.writeValue(file.toFile(), json);
    }

    private static void goodput(ObjectNode root, GoodputSlo slo) {
        if (!slo.isSet()) {
            root.putNull("goodput");
            return;
        }
        ObjectNode node = root.putObject("goodput");
        if (!Double.isInfinite(slo.ttftMs())) {
            node.put("ttft", slo.ttftMs());
        }
        if (!Double.isInfinite(slo.tpotMs())) {
            node.put("tpot", slo.tpotMs());
        }
        if (!Double.isInfinite(slo.e2elMs())) {
            node.put("e2el", slo.e2elMs());
        }
    }

    private static void latency(ObjectNode root, String name, LatencyStats stats) {
        root.put("mean_" + name + "_ms", stats.meanMs());
        root.put("std_" + name + "_ms", stats.stdMs());
        root.put("median_" + name + "_ms", stats.medianMs());
        root.put("p90_" + name + "_ms", stats.p90Ms());
        root.put("p99_" + name + "_ms", stats.p99Ms());
    }

    /** Per-request arrays in request order; a failed request has zeros and its reason in {@code errors}. */
    private static void detail(ObjectNode root, List<RequestResult> results) {
        ArrayNode inputLens = root.putArray("input_lens");
        ArrayNode outputLens = root.putArray("output_lens");
        ArrayNode ttfts = root.putArray("ttfts");
        ArrayNode e2els = root.putArray("e2els");
        ArrayNode itls = root.putArray("itls");
        ArrayNode errors = root.putArray("errors");
        for (RequestResult result : results) {
            switch (result) {
                case RequestResult.Success s -> {
                    inputLens.add(s.promptTokens());
                    outputLens.add(s.outputTokens());
                    ttfts.add(s.ttftNanos() / NANOS_PER_SECOND);
                    e2els.add(s.e2elNanos() / NANOS_PER_SECOND);
                    ArrayNode gaps = itls.addArray();
                    for (long gap : s.itlNanos()) {
                        gaps.add(gap / NANOS_PER_SECOND);
                    }
                    errors.add("");
                }
                case RequestResult.Failure f -> {
                    inputLens.add(0);
                    outputLens.add(0);
                    ttfts.add(0.0);
                    e2els.add(0.0);
                    itls.addArray();
                    errors.add(f.reason());
                }
            }
        }
    }
}
