package io.tandem.app;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The per-engine gauges of one {@code GET /metrics} scrape, keyed {@code name{role}}, e.g.
 * {@code tandem:kv_cache_free_blocks{decode}}. Engines publish their stats after each step, so
 * callers poll with {@link #await} rather than read once.
 */
record EngineGauges(Map<String, Double> values) {

    private static final Pattern SAMPLE = Pattern.compile(
            "^(tandem:[a-z_]+)\\{[^}]*role=\"(prefill|decode)\"[^}]*} (\\S+)$", Pattern.MULTILINE);
    static final String[] ROLES = {"prefill", "decode"};

    static EngineGauges scrape(HttpClient http, URI metrics) throws IOException, InterruptedException {
        HttpResponse<String> response = http.send(HttpRequest.newBuilder(metrics).timeout(Duration.ofSeconds(10)).build(),
                HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() != 200) {
            throw new AssertionError("GET " + metrics + " answered " + response.statusCode() + ": " + response.body());
        }
        Map<String, Double> values = new TreeMap<>();
        Matcher m = SAMPLE.matcher(response.body());
        while (m.find()) {
            values.put(m.group(1) + "{" + m.group(2) + "}", Double.parseDouble(m.group(3)));
        }
        return new EngineGauges(values);
    }

    double get(String name, String role) {
        Double value = values.get(name + "{" + role + "}");
        if (value == null) {
            throw new AssertionError("no sample of " + name + " for role " + role + " in " + values);
        }
        return value;
    }

    /** Both engines hold no KV block and no request: free == total, nothing running or waiting. */
    boolean idle() {
        for (String role : ROLES) {
            if (get("tandem:kv_cache_free_blocks", role) != get("tandem:kv_cache_total_blocks", role)
                    || get("tandem:num_requests_running", role) != 0
                    || get("tandem:num_requests_waiting", role) != 0) {
                return false;
            }
        }
        return true;
    }

    /** The decode engine is generating at least one sequence. */
    boolean decoding() {
        return get("tandem:num_requests_running", "decode") > 0;
    }

    /** A condition on a scrape. */
    interface Condition {
        boolean test(EngineGauges gauges);
    }

    /**
     * Scrapes every 10 ms until {@code condition} holds.
     *
     * @return the scrape that satisfied it
     * @throws AssertionError with the last values after {@code timeout}
     */
    static EngineGauges await(HttpClient http, URI metrics, Duration timeout, String what, Condition condition)
            throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            EngineGauges gauges = scrape(http, metrics);
            if (condition.test(gauges)) {
                return gauges;
            }
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError("not " + what + " after " + timeout + ": " + gauges.values());
            }
            Thread.sleep(10);
        }
    }
}
