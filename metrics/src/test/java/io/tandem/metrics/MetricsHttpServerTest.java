package io.tandem.metrics;

import static org.assertj.core.api.Assertions.assertThat;

import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.tandem.engine.EngineStats;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(30)
class MetricsHttpServerTest {
    private final HttpClient http = HttpClient.newHttpClient();
    private MetricsHttpServer server;
    private URI base;

    @BeforeEach
    void start() throws Exception {
        PrometheusRegistry registry = new PrometheusRegistry();
        EngineStats stats = new EngineStats(2, 3, 1, 75, 100, 0, 0, 0, 40);
        EngineMetrics.register(registry, "tiny", new String[] {"prefill"}, List.of(() -> stats));
        server = new MetricsHttpServer(registry).start("127.0.0.1", 0);
        base = URI.create("http://127.0.0.1:" + server.port());
    }

    @AfterEach
    void stop() {
        server.close();
        http.close();
    }

    @Test
    void shouldServeTheEngineGaugesWithModelAndRoleLabels() throws Exception {
        HttpResponse<String> response = get("/metrics");
        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(response.headers().firstValue("Content-Type")).hasValueSatisfying(t -> assertThat(t).startsWith("text/plain"));
        assertThat(response.body())
                .contains("tandem:num_requests_running{model_name=\"tiny\",role=\"prefill\"} 2.0")
                .contains("tandem:num_requests_waiting{model_name=\"tiny\",role=\"prefill\"} 3.0")
                .contains("tandem:kv_cache_free_blocks{model_name=\"tiny\",role=\"prefill\"} 75.0")
                .contains("tandem:kv_cache_usage_perc{model_name=\"tiny\",role=\"prefill\"} 0.25");
    }

    @Test
    void shouldAnswerNotFoundElsewhereAndMethodNotAllowedForPost() throws Exception {
        assertThat(get("/").statusCode()).isEqualTo(404);
        HttpResponse<String> post = http.send(HttpRequest.newBuilder(base.resolve("/metrics"))
                .POST(HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(post.statusCode()).isEqualTo(405);
        assertThat(post.headers().firstValue("Allow")).hasValue("GET");
    }

    @Test
    void shouldCloseIdempotently() {
        server.close();
        server.close();
    }

    private HttpResponse<String> get(String path) throws Exception {
        return http.send(HttpRequest.newBuilder(base.resolve(path)).GET().build(), HttpResponse.BodyHandlers.ofString());
    }
}
