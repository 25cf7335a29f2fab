package io.tandem.metrics;

import static org.assertj.core.api.Assertions.assertThat;

import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The decode side's KV transfer series, scraped from a real metrics endpoint. */
@Timeout(30)
class KvTransferMetricsTest {

    @Test
    void shouldExposeZeroSeriesBeforeTheFirstPullThenCountPullsFailuresAndRenewals() throws Exception {
        PrometheusRegistry registry = new PrometheusRegistry();
        KvTransferMetrics metrics = new KvTransferMetrics(registry, "tiny");
        long[] recomputes = {0};
        metrics.registerLoadRecomputes(() -> recomputes[0]);
        try (MetricsHttpServer server = new MetricsHttpServer(registry).start("127.0.0.1", 0);
             HttpClient http = HttpClient.newHttpClient()) {
            URI uri = URI.create("http://127.0.0.1:" + server.port() + "/metrics");
            String before = http.send(HttpRequest.newBuilder(uri).build(), HttpResponse.BodyHandlers.ofString()).body();
            assertThat(before)
                    .contains("tandem:kv_transfer_bytes_total{model_name=\"tiny\",role=\"decode\"} 0.0")
                    .contains("tandem:kv_transfer_seconds_count{model_name=\"tiny\",role=\"decode\"} 0")
                    .doesNotContain("tandem:kv_transfer_failures_total{");

            metrics.recordPull(40960, 10, 2_000_000);
            metrics.recordPull(4096, 1, 500_000_000);
            metrics.recordFailure("connection_lost");
            metrics.recordFailure("timeout");
            metrics.recordFailure("timeout");
            metrics.recordRenewals(3);
            recomputes[0] = 2;

            String after = http.send(HttpRequest.newBuilder(uri).build(), HttpResponse.BodyHandlers.ofString()).body();
            assertThat(after)
                    .contains("tandem:kv_transfer_bytes_total{model_name=\"tiny\",role=\"decode\"} 45056.0")
                    .contains("tandem:kv_transfer_pages_total{model_name=\"tiny\",role=\"decode\"} 11.0")
                    .contains("tandem:kv_transfer_seconds_count{model_name=\"tiny\",role=\"decode\"} 2")
                    .contains("tandem:kv_transfer_seconds_sum{model_name=\"tiny\",role=\"decode\"} 0.502")
                    .contains("tandem:kv_transfer_seconds_bucket{model_name=\"tiny\",role=\"decode\",le=\"0.0025\"} 1")
                    .contains("tandem:kv_transfer_failures_total{model_name=\"tiny\",reason=\"connection_lost\",role=\"decode\"} 1.0")
                    .contains("tandem:kv_transfer_failures_total{model_name=\"tiny\",reason=\"timeout\",role=\"decode\"} 2.0")
                    .contains("tandem:kv_lease_renewals_total{model_name=\"tiny\",role=\"decode\"} 3.0")
                    .contains("tandem:kv_load_recomputes_total{model_name=\"tiny\",role=\"decode\"} 2.0");
        }
    }
}
