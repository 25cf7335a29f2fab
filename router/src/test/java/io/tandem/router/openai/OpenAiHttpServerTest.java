package io.tandem.router.openai;

import static io.tandem.router.testing.OpenAiClient.json;
import static io.tandem.router.testing.OpenAiClient.sseData;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.tandem.router.testing.EchoGenerationService;
import io.tandem.kvcache.testing.NoNettyLeaks;
import io.tandem.router.testing.OpenAiClient;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.ConnectException;
import java.net.Socket;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/** Server-level behaviour: side endpoints, connections, cancellation, concurrency, lifecycle. */
@ExtendWith(NoNettyLeaks.class)
@Timeout(30)
class OpenAiHttpServerTest {

    private PrometheusRegistry registry;
    private EchoGenerationService service;
    private OpenAiHttpServer server;
    private OpenAiClient client;

    @BeforeEach
    void start() throws InterruptedException {
        registry = new PrometheusRegistry();
        service = new EchoGenerationService();
        server = new OpenAiHttpServer(service, registry, 64 << 10, 2).start("127.0.0.1", 0);
        client = new OpenAiClient(server.port());
    }

    @AfterEach
    void stop() {
        client.close();
        server.close();
        service.close();
    }

    @Test
    void shouldListServedModels() {
        HttpResponse<String> response = client.get("/v1/models");

        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(json(response.body())).isEqualTo(json("""
                {"object": "list", "data": [{"id": "echo-1", "object": "model", "created": 1700000000,
                 "owned_by": "tandem", "max_model_len": 4096}]}"""));
    }

    @Test
    void shouldAnswerHealthWith200() {
        assertThat(client.get("/health").statusCode()).isEqualTo(200);
    }

    @Test
    void shouldExposeRegistryAsPrometheusText() {
        Counter.builder().name("tandem_test_requests").help("requests seen by the test").register(registry).inc();

        HttpResponse<String> response = client.get("/metrics");

        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(response.headers().firstValue("content-type")).hasValue("text/plain; version=0.0.4; charset=utf-8");
        assertThat(response.body()).contains("# TYPE tandem_test_requests_total counter").contains("tandem_test_requests_total 1.0");
    }

    @Test
    void shouldCancelGenerationWhenStreamingClientDisconnects() throws Exception {
        String id;
        try (Socket socket = new Socket("127.0.0.1", server.port())) {
            socket.setSoTimeout(10_000);
            write(socket, post("/v1/completions", "{\"prompt\": \"hold on\", \"stream\": true}", ""));
            assertThat(readUntil(socket.getInputStream(), "data: {")).startsWith("HTTP/1.1 200 OK");
            id = service.nextAdmitted().requestId();
        }

        assertThat(service.cancelled().poll(10, TimeUnit.SECONDS)).isEqualTo(id);
    }

    @Test
    void shouldCancelGenerationWhenNonStreamingClientDisconnects() throws Exception {
        String id;
        try (Socket socket = new Socket("127.0.0.1", server.port())) {
            write(socket, post("/v1/completions", "{\"prompt\": \"hold on\"}", ""));
            id = service.nextAdmitted().requestId();
        }

        assertThat(service.cancelled().poll(10, TimeUnit.SECONDS)).isEqualTo(id);
    }

    @Test
    void shouldServeEightConcurrentStreamsEachWithItsOwnText() throws Exception {
        List<String> prompts = new ArrayList<>();
        List<CompletableFuture<HttpResponse<String>>> responses = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            String prompt = "stream " + i + " " + "abcdefghijklmnopqrstuvwxyz".substring(i);
            prompts.add(prompt);
            responses.add(client.postAsync("/v1/completions",
                    "{\"prompt\": \"" + prompt + "\", \"max_tokens\": 100, \"stream\": true}"));
        }

        for (int i = 0; i < 8; i++) {
            HttpResponse<String> response = responses.get(i).get(20, TimeUnit.SECONDS);
            assertThat(response.statusCode()).isEqualTo(200);
            List<String> events = sseData(response.body());
            assertThat(events.getLast()).isEqualTo("[DONE]");
            StringBuilder text = new StringBuilder();
            for (String event : events.subList(0, events.size() - 1)) {
                text.append(json(event).get("choices").get(0).get("text").asText());
            }
            assertThat(text).hasToString(prompts.get(i));
        }
    }

    @Test
    void shouldAnswerPipelinedRequestsInOrderOnOneConnection() throws Exception {
        try (Socket socket = new Socket("127.0.0.1", server.port())) {
            socket.setSoTimeout(10_000);
            write(socket, post("/v1/completions", "{\"prompt\": \"first, streamed\", \"stream\": true}", "")
                    + post("/v1/models", "", "").replace("POST", "GET")
                    + post("/v1/completions", "{\"prompt\": \"second\"}", "Connection: close\r\n"));

            String all = readAll(socket.getInputStream());

            int streamDone = all.indexOf("data: [DONE]");
            int models = all.indexOf("\"object\":\"list\"");
            int second = all.indexOf("\"text\":\"second\"");
            assertThat(streamDone).isPositive();
            assertThat(models).isGreaterThan(streamDone);
            assertThat(second).isGreaterThan(models);
            assertThat(all.split("HTTP/1.1 200 OK", -1)).hasSize(4);
        }
    }

    @Test
    void shouldCloseConnectionAfterResponseWhenClientAsksForIt() throws Exception {
        try (Socket socket = new Socket("127.0.0.1", server.port())) {
            socket.setSoTimeout(10_000);
            write(socket, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");

            String all = readAll(socket.getInputStream());

            assertThat(all).startsWith("HTTP/1.1 200 OK").contains("connection: close");
        }
    }

    @Test
    void shouldCancelStreamsInFlightAndRefuseConnectionsWhenClosedTwice() throws Exception {
        try (Socket socket = new Socket("127.0.0.1", server.port())) {
            socket.setSoTimeout(10_000);
            write(socket, post("/v1/completions", "{\"prompt\": \"hold on\", \"stream\": true}", ""));
            readUntil(socket.getInputStream(), "data: {");
            String id = service.nextAdmitted().requestId();
            int port = server.port();

            server.close();
            server.close();

            assertThat(service.cancelled().poll(10, TimeUnit.SECONDS)).isEqualTo(id);
            assertThat(readAll(socket.getInputStream())).as("rest of the stream up to EOF").doesNotContain("[DONE]");
            assertThatThrownBy(() -> new Socket("127.0.0.1", port).close()).isInstanceOf(ConnectException.class);
        }
    }

    @Test
    void shouldRefuseToStartTwice() {
        assertThatThrownBy(() -> server.start("127.0.0.1", 0)).isInstanceOf(IllegalStateException.class);
    }

    private static String post(String path, String body, String extraHeaders) {
        return "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: "
                + body.getBytes(StandardCharsets.UTF_8).length + "\r\n" + extraHeaders + "\r\n" + body;
    }

    private static void write(Socket socket, String request) throws IOException {
        socket.getOutputStream().write(request.getBytes(StandardCharsets.UTF_8));
        socket.getOutputStream().flush();
    }

    /** Reads until {@code marker} has arrived (or the stream ends). */
    private static String readUntil(InputStream in, String marker) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buffer = new byte[4096];
        while (!out.toString(StandardCharsets.UTF_8).contains(marker)) {
            int n = in.read(buffer);
            if (n < 0) {
                break;
            }
            out.write(buffer, 0, n);
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    private static String readAll(InputStream in) throws IOException {
        return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
}
