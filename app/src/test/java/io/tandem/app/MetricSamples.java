package io.tandem.app;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

/**
 * One {@code GET /metrics} scrape in Prometheus text, read by series name and label values, e.g.
 * {@code value("tandem:kv_transfer_failures_total", "role=\"decode\"", "reason=\"timeout\"")}.
 * Unlike {@link EngineGauges} it keeps every label, so it tells apart the series of one name.
 */
record MetricSamples(String text) {

    static MetricSamples scrape(HttpClient http, URI metrics) throws IOException, InterruptedException {
        HttpResponse<String> response = http.send(HttpRequest.newBuilder(metrics).timeout(Duration.ofSeconds(10)).build(),
                HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() != 200) {
            throw new AssertionError("GET " + metrics + " answered " + response.statusCode() + ": " + response.body());
        }
        return new MetricSamples(response.body());
    }

    /**
     * The value of the one sample of {@code name} whose labels include every one of {@code labels}
     * ({@code key="value"}); 0 if there is none (a labelled counter appears at its first increment).
     *
     * @throws AssertionError if several samples match
     */
    double value(String name, String... labels) {
        Double found = null;
        for (String line : text.split("\n")) {
            if (!line.startsWith(name + "{") && !line.startsWith(name + " ")) {
                continue;
            }
            int close = line.lastIndexOf('}');
            String labelText = close < 0 ? "" : line.substring(name.length(), close + 1);
            boolean all = true;
            for (String label : labels) {
                all &= labelText.contains(label);
            }
            if (all) {
                if (found != null) {
                    throw new AssertionError("several samples of " + name + " with " + String.join(",", labels) + ":\n" + text);
                }
                found = Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
            }
        }
        return found == null ? 0 : found;
    }

    /** A condition on a scrape. */
    interface Condition {
        boolean test(MetricSamples samples);
    }

    /**
     * Scrapes every 20 ms until {@code condition} holds.
     *
     * @return the scrape that satisfied it
     * @throws AssertionError quoting the last scrape after {@code timeout}
     */
    static MetricSamples await(HttpClient http, URI metrics, Duration timeout, String what, Condition condition)
            throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            MetricSamples samples = scrape(http, metrics);
            if (condition.test(samples)) {
                return samples;
            }
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError("not " + what + " after " + timeout + " at " + metrics + ":\n" + samples.text());
            }
            Thread.sleep(20);
        }
    }
}
