package io.tandem.bench;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** {@link OpenAiBackend} against a scripted HTTP server on loopback. */
@Timeout(30)
class OpenAiBackendTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Duration TIMEOUT = Duration.ofSeconds(10);
    private static final SampleRequest REQUEST = new SampleRequest(new Prompt.TokenIds(new int[] {300, 301, 302}), 3, 5);

    private HttpServer server;
    private URI base;
    private final AtomicReference<JsonNode> received = new AtomicReference<>();
    private final CountDownLatch release = new CountDownLatch(1);

    @BeforeEach
    void startServer() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        server.start();
        base = URI.create("http://127.0.0.1:" + server.getAddress().getPort());
    }

    @AfterEach
    void stopServer() {
        release.countDown();
        server.stop(0);
    }

    /** Serves {@code path} with a handler that has already read the request body into {@link #received}. */
    private void route(String path, Handler handler) {
        server.createContext(path, exchange -> {
            received.set(JSON.readTree(exchange.getRequestBody()));
            try {
                handler.handle(exchange);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } finally {
                exchange.close();
            }
        });
    }

    private interface Handler {
        void handle(HttpExchange exchange) throws IOException, InterruptedException;
    }

    private static void startEvents(HttpExchange exchange) throws IOException {
        exchange.getResponseHeaders().set("Content-Type", "text/event-stream");
        exchange.sendResponseHeaders(200, 0);
    }

    private static void event(HttpExchange exchange, String json) throws IOException {
        OutputStream body = exchange.getResponseBody();
        body.write(("data: " + json + "\n\n").getBytes(StandardCharsets.UTF_8));
        body.flush();
    }

    private static String textChunk(String text) {
        return "{\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\"" + text + "\",\"finish_reason\":null}],\"usage\":null}";
    }

    @Test
    void shouldTimeEveryTextChunkAndTakeTokenCountsFromUsage() throws Exception {
        route("/v1/completions", exchange -> {
            startEvents(exchange);
            for (String text : List.of("Once", " upon", " a time")) {
                event(exchange, textChunk(text));
                Thread.sleep(50);
            }
            event(exchange, "{\"choices\":[{\"index\":0,\"text\":\"\",\"finish_reason\":\"length\"}],\"usage\":null}");
            event(exchange, "{\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5,\"total_tokens\":8}}");
            event(exchange, "[DONE]");
        });
        try (OpenAiBackend backend = new OpenAiBackend(base, OpenAiBackend.EndpointType.COMPLETIONS, TIMEOUT)) {
            RequestResult.Success s = (RequestResult.Success) backend.send("m", REQUEST);

            // Five tokens in three text chunks: usage counts tokens, ITL counts chunks (the finish chunk has no text).
            assertThat(s.outputTokens()).isEqualTo(5);
            assertThat(s.promptTokens()).isEqualTo(3);
            assertThat(s.itlNanos()).hasSize(2);
            assertThat(Arrays.stream(s.itlNanos()).min().orElseThrow()).isGreaterThanOrEqualTo(TimeUnit.MILLISECONDS.toNanos(40));
            assertThat(s.e2elNanos() - s.ttftNanos()).isGreaterThanOrEqualTo(TimeUnit.MILLISECONDS.toNanos(90));
        }
    }

    @Test
    void shouldAskForGreedyStreamedOutputOfTheExpectedLengthWithUsage() throws Exception {
        route("/v1/completions", exchange -> {
            startEvents(exchange);
            event(exchange, textChunk("x"));
            event(exchange, "[DONE]");
        });
        try (OpenAiBackend backend = new OpenAiBackend(base, OpenAiBackend.EndpointType.COMPLETIONS, TIMEOUT)) {
            backend.send("stories260K", REQUEST);
        }

        assertThat(received.get()).isEqualTo(JSON.readTree("""
                {"model": "stories260K", "prompt": [300, 301, 302], "max_tokens": 5, "temperature": 0,
                 "ignore_eos": true, "stream": true, "stream_options": {"include_usage": true}}"""));
    }

    @Test
    void shouldSendChatAsOneUserMessageAndTimeOnlyChunksWithContent() throws Exception {
        route("/v1/chat/completions", exchange -> {
            startEvents(exchange);
            event(exchange, "{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}],\"usage\":null}");
            Thread.sleep(100);
            event(exchange, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}");
            event(exchange, "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}],\"usage\":null}");
            event(exchange, "[DONE]");
        });
        SampleRequest chat = new SampleRequest(new Prompt.Text("the cat sat"), 4, 2);
        try (OpenAiBackend backend = new OpenAiBackend(base, OpenAiBackend.EndpointType.CHAT, TIMEOUT)) {
            RequestResult.Success s = (RequestResult.Success) backend.send("m", chat);

            // The role-only first chunk is not a token: TTFT waits for "Hi".
            assertThat(s.ttftNanos()).isGreaterThanOrEqualTo(TimeUnit.MILLISECONDS.toNanos(90));
            assertThat(s.itlNanos()).isEmpty();
            // No usage chunk: one chunk counted, and the dataset's prompt length.
            assertThat(s.outputTokens()).isEqualTo(1);
            assertThat(s.promptTokens()).isEqualTo(4);
        }
        assertThat(received.get().get("messages")).isEqualTo(JSON.readTree("[{\"role\": \"user\", \"content\": \"the cat sat\"}]"));
        assertThat(received.get().get("max_completion_tokens").asInt()).isEqualTo(2);
    }

    @Test
    void shouldReportTheStatusAndErrorMessageOfARejectedRequest() throws Exception {
        route("/v1/completions", exchange -> {
            byte[] body = "{\"error\":{\"message\":\"The model 'nope' does not exist\",\"type\":\"invalid_request_error\"}}"
                    .getBytes(StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(404, body.length);
            exchange.getResponseBody().write(body);
        });
        try (OpenAiBackend backend = new OpenAiBackend(base, OpenAiBackend.EndpointType.COMPLETIONS, TIMEOUT)) {
            assertThat(backend.send("nope", REQUEST)).isEqualTo(new RequestResult.Failure("HTTP 404: The model 'nope' does not exist"));
        }
    }

    @Test
    void shouldFailARequestWhoseStreamCarriesAnErrorEvent() throws Exception {
        route("/v1/completions", exchange -> {
            startEvents(exchange);
            event(exchange, textChunk("x"));
            event(exchange, "{\"error\":{\"message\":\"engine crashed\",\"type\":\"server_error\"}}");
            event(exchange, "[DONE]");
        });
        try (OpenAiBackend backend = new OpenAiBackend(base, OpenAiBackend.EndpointType.COMPLETIONS, TIMEOUT)) {
            assertThat(backend.send("m", REQUEST)).isEqualTo(new RequestResult.Failure("stream error: engine crashed"));
        }
    }

    @Test
    void shouldFailAStreamThatNeverCarriesATokenLikeVllm() throws Exception {
        route("/v1/completions", exchange -> {
            startEvents(exchange);
            event(exchange, "[DONE]");
        });
        try (OpenAiBackend backend = new OpenAiBackend(base, OpenAiBackend.EndpointType.COMPLETIONS, TIMEOUT)) {
            assertThat(backend.send("m", REQUEST)).isEqualTo(new RequestResult.Failure("Never received a valid chunk to calculate TTFT."));
        }
    }

    @Test
    void shouldEndAStuckStreamAsATimeoutFailure() throws Exception {
        route("/v1/completions", exchange -> {
            startEvents(exchange);
            event(exchange, textChunk("x"));
            release.await();
        });
        try (OpenAiBackend backend = new OpenAiBackend(base, OpenAiBackend.EndpointType.COMPLETIONS, Duration.ofMillis(300))) {
            long start = System.nanoTime();
            RequestResult result = backend.send("m", REQUEST);

            assertThat(result).isEqualTo(new RequestResult.Failure("timeout after 0.3 s"));
            assertThat(System.nanoTime() - start).isLessThan(TimeUnit.SECONDS.toNanos(5));
        }
    }

    @Test
    void shouldReportAnUnreachableServerAsAFailure() throws Exception {
        int closedPort;
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            closedPort = socket.getLocalPort();
        }
        try (OpenAiBackend backend = new OpenAiBackend(URI.create("http://127.0.0.1:" + closedPort),
                OpenAiBackend.EndpointType.COMPLETIONS, TIMEOUT)) {
            assertThat(backend.send("m", REQUEST)).isInstanceOfSatisfying(RequestResult.Failure.class,
                    f -> assertThat(f.reason()).startsWith("ConnectException"));
        }
    }

    @Test
    void shouldListTheServedModelIdsInOrder() throws Exception {
        server.createContext("/v1/models", exchange -> {
            byte[] body = "{\"object\":\"list\",\"data\":[{\"id\":\"a\",\"object\":\"model\"},{\"id\":\"b\",\"object\":\"model\"}]}"
                    .getBytes(StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(200, body.length);
            exchange.getResponseBody().write(body);
            exchange.close();
        });
        try (OpenAiBackend backend = new OpenAiBackend(base, OpenAiBackend.EndpointType.COMPLETIONS, TIMEOUT)) {
            assertThat(backend.listModels()).containsExactly("a", "b");
        }
    }
}
