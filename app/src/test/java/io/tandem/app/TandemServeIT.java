package io.tandem.app;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.CallOptions;
import io.grpc.Context;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.protobuf.ProtoUtils;
import io.grpc.stub.ClientCalls;
import io.tandem.engine.ReferenceModel;
import io.tandem.proto.v1.FinishReason;
import io.tandem.proto.v1.GenerateRequest;
import io.tandem.proto.v1.GenerateResponse;
import io.tandem.proto.v1.GenerationGrpc;
import io.tandem.proto.v1.ListModelsRequest;
import io.tandem.proto.v1.SamplingParams;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The acceptance tests of {@code tandem serve}: one real server process (router, prefill and decode
 * engines in one JVM, stories260K) driven through real clients, the JDK's HTTP client and a
 * grpc-java channel, with llama.cpp's greedy outputs as the expected answers. Ends by checking
 * that no KV block is left allocated in either engine.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class TandemServeIT {

    private static final String MODEL = "stories260K";
    private static final int CONTEXT = 2048;
    /** How long after a client goes away its generation may still hold blocks; 1,500 tokens take ~4 s on 2 cores. */
    private static final Duration CANCEL_DEADLINE = Duration.ofSeconds(2);
    private static final ObjectMapper JSON = new ObjectMapper();

    private static TandemProcess server;
    private static ReferenceContinuations reference;
    private static HttpClient http;
    private static ManagedChannel channel;
    private static URI base;

    @BeforeAll
    @Timeout(value = 90, unit = TimeUnit.SECONDS)
    static void startServer() throws Exception {
        reference = new ReferenceContinuations();
        server = TandemProcess.serve(Duration.ofSeconds(60),
                "--model", ReferenceModel.ggufPath().toAbsolutePath().toString(),
                "--http-port", "0", "--grpc-port", "0", "--threads", "2");
        base = URI.create("http://" + server.host() + ":" + server.httpPort());
        http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5)).build();
        channel = Grpc.newChannelBuilderForAddress(server.host(), server.grpcPort(), InsecureChannelCredentials.create()).build();
    }

    @AfterAll
    @Timeout(value = 60, unit = TimeUnit.SECONDS)
    static void stopServer() throws Exception {
        try {
            if (server != null) {
                awaitIdleEngines(Duration.ofSeconds(10));
                // Bad requests and vanished clients are the clients' problems: nothing logged as a server error.
                assertThat(server.stderr()).doesNotContain("SEVERE", "ERROR", "Exception");
            }
        } finally {
            try {
                if (channel != null) {
                    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
                }
                if (http != null) {
                    http.close();
                }
                if (reference != null) {
                    reference.close();
                }
            } finally {
                if (server != null) {
                    server.close();
                }
            }
        }
    }

    static Stream<Named<String>> referenceCases() {
        return Stream.of("bos_only", "once_upon_a_time", "lily_park").map(name -> Named.of(name, name));
    }

    // ---- /v1/completions ----

    @ParameterizedTest
    @MethodSource("referenceCases")
    void shouldCompleteEachReferencePromptWithTheReferenceContinuation(String name) throws Exception {
        ReferenceModel.Case c = reference.get(name);
        int n = c.generatedTokenIds().length;

        JsonNode response = postOk("/v1/completions", Map.of("model", MODEL, "prompt", c.prompt(), "max_tokens", n, "temperature", 0));

        assertThat(response.path("id").asText()).startsWith("cmpl-");
        assertThat(response.path("object").asText()).isEqualTo("text_completion");
        assertThat(response.path("model").asText()).isEqualTo(MODEL);
        JsonNode choice = response.path("choices").path(0);
        assertThat(choice.path("text").asText()).isEqualTo(ReferenceContinuations.text(c));
        assertThat(choice.path("finish_reason").asText()).isEqualTo("length");
        assertUsage(response.path("usage"), c.promptTokenIds().length, n);
    }

    @ParameterizedTest
    @MethodSource("referenceCases")
    void shouldStreamTheReferenceContinuationAsServerSentEventsEndingWithDone(String name) throws Exception {
        ReferenceModel.Case c = reference.get(name);
        int n = c.generatedTokenIds().length;

        ServerSentEvents events = postStream("/v1/completions", Map.of("prompt", c.prompt(), "max_tokens", n,
                "temperature", 0, "stream", true, "stream_options", Map.of("include_usage", true)));

        assertThat(events.text()).isEqualTo(ReferenceContinuations.text(c));
        List<JsonNode> chunks = events.chunks();
        assertThat(chunks).hasSizeGreaterThan(2).allSatisfy(chunk -> {
            assertThat(chunk.path("object").asText()).isEqualTo("text_completion");
            assertThat(chunk.path("model").asText()).isEqualTo(MODEL);
        });
        JsonNode last = chunks.get(chunks.size() - 2);
        assertThat(last.path("choices").path(0).path("finish_reason").asText()).isEqualTo("length");
        assertThat(chunks.subList(0, chunks.size() - 2)).allSatisfy(chunk -> {
            assertThat(chunk.path("choices").path(0).path("finish_reason").isNull()).isTrue();
            assertThat(chunk.path("usage").isNull()).isTrue();
        });
        JsonNode usageChunk = chunks.getLast();
        assertThat(usageChunk.path("choices").isEmpty()).isTrue();
        assertUsage(usageChunk.path("usage"), c.promptTokenIds().length, n);
    }

    @Test
    void shouldContinueATokenIdPromptWithTheReferenceTokens() throws Exception {
        ReferenceModel.Case once = reference.get("once_upon_a_time");
        assertThat(once.promptTokenIds()).containsExactly(1, 403, 407, 261, 378);

        int n = once.generatedTokenIds().length;

        JsonNode response = postOk("/v1/completions", Map.of("prompt", List.of(1, 403, 407, 261, 378), "max_tokens", n, "temperature", 0));
        List<GenerateResponse> grpc = generate(GenerateRequest.newBuilder().addAllPromptTokenIds(List.of(1, 403, 407, 261, 378))
                .setSampling(SamplingParams.newBuilder().setMaxTokens(n)).build());

        assertThat(response.path("choices").path(0).path("text").asText()).isEqualTo(ReferenceContinuations.text(once));
        assertUsage(response.path("usage"), 5, n);
        assertThat(tokenIds(grpc)).containsExactly(once.generatedTokenIds());
        assertThat(text(grpc)).isEqualTo(ReferenceContinuations.text(once));
    }

    @ParameterizedTest
    @ValueSource(strings = {"Lily", "little girl", "park."})
    void shouldCutTheTextRightBeforeAStopStringWithFinishReasonStop(String stop) throws Exception {
        ReferenceModel.Case once = reference.get("once_upon_a_time");
        String whole = ReferenceContinuations.text(once);
        assertThat(whole).contains(stop);
        Map<String, Object> request = Map.of("prompt", once.prompt(), "max_tokens", once.generatedTokenIds().length,
                "temperature", 0, "stop", List.of("no such text", stop));

        JsonNode response = postOk("/v1/completions", request);
        Map<String, Object> streaming = new LinkedHashMap<>(request);
        streaming.put("stream", true);
        ServerSentEvents events = postStream("/v1/completions", streaming);

        String expected = whole.substring(0, whole.indexOf(stop));
        assertThat(response.path("choices").path(0).path("text").asText()).isEqualTo(expected);
        assertThat(response.path("choices").path(0).path("finish_reason").asText()).isEqualTo("stop");
        assertThat(events.text()).isEqualTo(expected);
        assertThat(events.chunks().getLast().path("choices").path(0).path("finish_reason").asText()).isEqualTo("stop");
    }

    // ---- /v1/chat/completions ----

    @Test
    void shouldAnswerChatWithTheCompletionOfTheChatMlRenderedConversation() throws Exception {
        List<Map<String, String>> messages = List.of(
                Map.of("role", "system", "content", "You tell stories."),
                Map.of("role", "user", "content", "Tell me about Lily."));
        String chatMl = "<|im_start|>system\nYou tell stories.<|im_end|>\n<|im_start|>user\nTell me about Lily.<|im_end|>\n"
                + "<|im_start|>assistant\n";
        JsonNode completion = postOk("/v1/completions", Map.of("prompt", chatMl, "max_tokens", 24, "temperature", 0));
        String expected = completion.path("choices").path(0).path("text").asText();
        assertThat(expected).isNotBlank();

        JsonNode chat = postOk("/v1/chat/completions", Map.of("model", MODEL, "messages", messages, "max_tokens", 24, "temperature", 0));
        ServerSentEvents events = postStream("/v1/chat/completions", Map.of("messages", messages, "max_tokens", 24,
                "temperature", 0, "stream", true));

        assertThat(chat.path("id").asText()).startsWith("chatcmpl-");
        assertThat(chat.path("object").asText()).isEqualTo("chat.completion");
        JsonNode choice = chat.path("choices").path(0);
        assertThat(choice.path("message").path("role").asText()).isEqualTo("assistant");
        assertThat(choice.path("message").path("content").asText()).isEqualTo(expected);
        assertThat(choice.path("finish_reason").asText()).isEqualTo(completion.path("choices").path(0).path("finish_reason").asText());
        assertThat(chat.path("usage")).isEqualTo(completion.path("usage"));

        assertThat(events.text()).isEqualTo(expected);
        assertThat(events.chunks()).allSatisfy(chunk -> assertThat(chunk.path("object").asText()).isEqualTo("chat.completion.chunk"));
        assertThat(events.chunks().getFirst().path("choices").path(0).path("delta").path("role").asText()).isEqualTo("assistant");
        assertThat(events.chunks().getLast().path("choices").path(0).path("finish_reason").asText())
                .isEqualTo(choice.path("finish_reason").asText());
    }

    // ---- models, health ----

    @Test
    void shouldListTheModelAndReportHealthOverHttpAndGrpc() throws Exception {
        HttpResponse<String> models = get("/v1/models");
        HttpResponse<String> health = get("/health");

        assertThat(models.statusCode()).isEqualTo(200);
        JsonNode list = JSON.readTree(models.body());
        assertThat(list.path("object").asText()).isEqualTo("list");
        assertThat(list.path("data")).hasSize(1);
        assertThat(list.path("data").path(0).path("id").asText()).isEqualTo(MODEL);
        assertThat(list.path("data").path(0).path("object").asText()).isEqualTo("model");
        assertThat(list.path("data").path(0).path("max_model_len").asInt()).isEqualTo(CONTEXT);
        assertThat(health.statusCode()).isEqualTo(200);

        var grpcModels = GenerationGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
                .listModels(ListModelsRequest.getDefaultInstance());
        assertThat(grpcModels.getModelsList()).singleElement().satisfies(card -> {
            assertThat(card.getId()).isEqualTo(MODEL);
            assertThat(card.getMaxModelLen()).isEqualTo(CONTEXT);
        });
        var healthStub = HealthGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS);
        for (String service : List.of("", GenerationGrpc.SERVICE_NAME)) {
            assertThat(healthStub.check(HealthCheckRequest.newBuilder().setService(service).build()).getStatus())
                    .as("health of '%s'", service).isEqualTo(ServingStatus.SERVING);
        }
    }

    // ---- gRPC Generate ----

    @ParameterizedTest
    @MethodSource("referenceCases")
    void shouldStreamTheReferenceTokensAndTextOverGrpc(String name) {
        ReferenceModel.Case c = reference.get(name);
        int n = c.generatedTokenIds().length;

        List<GenerateResponse> responses = generate(grpcRequest(c, n).setRequestId("it-" + name).build());

        assertThat(responses).allSatisfy(r -> assertThat(r.getRequestId()).isEqualTo("it-" + name));
        assertThat(tokenIds(responses)).containsExactly(c.generatedTokenIds());
        assertThat(text(responses)).isEqualTo(ReferenceContinuations.text(c));
        GenerateResponse last = responses.getLast();
        assertThat(last.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_LENGTH);
        assertThat(last.getUsage().getPromptTokens()).isEqualTo(c.promptTokenIds().length);
        assertThat(last.getUsage().getCompletionTokens()).isEqualTo(n);
        assertThat(last.getUsage().getTotalTokens()).isEqualTo(c.promptTokenIds().length + n);
        assertThat(responses.subList(0, responses.size() - 1)).allSatisfy(r -> {
            assertThat(r.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_UNSPECIFIED);
            assertThat(r.hasUsage()).isFalse();
        });
    }

    // ---- concurrency ----

    /** One of the concurrent streams: which API, which reference case, how many tokens. */
    private record ConcurrentStream(boolean grpc, String name, int maxTokens) {}

    @Test
    void shouldGiveEachOfEightConcurrentStreamsItsOwnExactText() throws Exception {
        List<ConcurrentStream> streams = List.of(
                new ConcurrentStream(false, "bos_only", 256), new ConcurrentStream(true, "once_upon_a_time", 60),
                new ConcurrentStream(false, "lily_park", 56), new ConcurrentStream(true, "bos_only", 100),
                new ConcurrentStream(false, "once_upon_a_time", 17), new ConcurrentStream(true, "lily_park", 31),
                new ConcurrentStream(false, "bos_only", 5), new ConcurrentStream(true, "once_upon_a_time", 1));
        CountDownLatch start = new CountDownLatch(1);
        List<Future<String>> texts = new ArrayList<>();
        try (ExecutorService pool = Executors.newFixedThreadPool(streams.size())) {
            for (ConcurrentStream s : streams) {
                texts.add(pool.submit(() -> {
                    start.await();
                    return concurrentStream(s);
                }));
            }
            start.countDown();
            for (int i = 0; i < streams.size(); i++) {
                ConcurrentStream s = streams.get(i);
                assertThat(texts.get(i).get(20, TimeUnit.SECONDS)).as("%s", s)
                        .isEqualTo(reference.text(reference.get(s.name()), s.maxTokens()));
            }
        }
    }

    private String concurrentStream(ConcurrentStream s) throws Exception {
        ReferenceModel.Case c = reference.get(s.name());
        if (s.grpc()) {
            List<GenerateResponse> responses = generate(grpcRequest(c, s.maxTokens()).build());
            assertThat(tokenIds(responses)).as("%s", s).containsExactly(ReferenceContinuations.tokens(c, s.maxTokens()));
            return text(responses);
        }
        return postStream("/v1/completions", Map.of("prompt", c.prompt(), "max_tokens", s.maxTokens(),
                "temperature", 0, "stream", true)).text();
    }

    // ---- client disconnects ----

    @Test
    void shouldFreeEverythingWhenAnHttpClientClosesTheConnectionMidStream() throws Exception {
        byte[] body = JSON.writeValueAsBytes(Map.of("prompt", "Once upon a time", "max_tokens", 1500, "temperature", 0, "stream", true));
        try (Socket socket = new Socket(server.host(), server.httpPort())) {
            socket.setSoTimeout(10_000);
            OutputStream out = socket.getOutputStream();
            out.write(("POST /v1/completions HTTP/1.1\r\nHost: " + server.host() + "\r\nContent-Type: application/json\r\n"
                    + "Content-Length: " + body.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            out.write(body);
            out.flush();
            BufferedReader in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
            assertThat(in.readLine()).isEqualTo("HTTP/1.1 200 OK");
            String line;
            do {
                line = in.readLine();
            } while (line != null && !line.startsWith("data: {"));
            assertThat(line).as("first event").isNotNull().contains("\"finish_reason\":null");
            awaitGauges(Duration.ofSeconds(5), "decoding", EngineGauges::decoding);
        }
        awaitIdleEngines(CANCEL_DEADLINE);
    }

    @Test
    void shouldFreeEverythingWhenAGrpcClientCancelsMidStream() throws Exception {
        GenerateRequest request = GenerateRequest.newBuilder().setPrompt("Once upon a time")
                .setSampling(SamplingParams.newBuilder().setMaxTokens(1500)).build();
        Context.CancellableContext call = Context.current().withCancellation();
        try {
            call.call(() -> {
                Iterator<GenerateResponse> stream = GenerationGrpc.newBlockingStub(channel).generate(request);
                assertThat(stream.next().getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_UNSPECIFIED);
                awaitGauges(Duration.ofSeconds(5), "decoding", EngineGauges::decoding);
                return null;
            });
        } finally {
            call.cancel(null);
        }
        awaitIdleEngines(CANCEL_DEADLINE);
    }

    // ---- bad inputs ----

    @ParameterizedTest
    @MethodSource("io.tandem.app.BadRequests#http")
    void shouldRefuseABadHttpRequestWithAnOpenAiErrorNamingTheFieldAndServeTheNextOne(BadRequests.Http bad) throws Exception {
        HttpResponse<String> response = http.send(HttpRequest.newBuilder(base.resolve(bad.path()))
                .timeout(Duration.ofSeconds(20))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofByteArray(bad.body()))
                .build(), HttpResponse.BodyHandlers.ofString());

        assertThat(response.statusCode()).as(response.body()).isEqualTo(bad.status());
        JsonNode error = JSON.readTree(response.body()).path("error");
        assertThat(error.path("type").asText()).isEqualTo("invalid_request_error");
        assertThat(error.path("message").asText()).isNotBlank();
        assertThat(error.path("param").isNull() ? null : error.path("param").asText()).as(response.body()).isEqualTo(bad.param());
        assertThat(error.path("code").isNull() ? null : error.path("code").asText()).isEqualTo(bad.code());
        assertServesAGoodRequest();
    }

    @ParameterizedTest
    @MethodSource("io.tandem.app.BadRequests#grpc")
    void shouldRefuseABadGrpcRequestWithAStatusNamingTheFieldAndServeTheNextOne(BadRequests.Grpc bad) {
        MethodDescriptor<byte[], GenerateResponse> rawGenerate = GenerationGrpc.getGenerateMethod().toBuilder(
                new BadRequests.RawBytes(), ProtoUtils.marshaller(GenerateResponse.getDefaultInstance())).build();

        assertThatThrownBy(() -> ClientCalls.blockingServerStreamingCall(channel, rawGenerate,
                        CallOptions.DEFAULT.withDeadlineAfter(20, TimeUnit.SECONDS), bad.request()).forEachRemaining(r -> {}))
                .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                    assertThat(e.getStatus().getCode()).isEqualTo(bad.code());
                    assertThat(e.getStatus().getDescription()).contains(bad.named());
                });
        ReferenceModel.Case once = reference.get("once_upon_a_time");
        assertThat(text(generate(grpcRequest(once, 8).build()))).isEqualTo(reference.text(once, 8));
    }

    // ---- the command line ----

    @ParameterizedTest
    @ValueSource(strings = {"serve", "generate", "export-dummy"})
    void shouldPrintUsageForHelpOfEachCommand(String command) throws Exception {
        TandemProcess.Result result = TandemProcess.run(Duration.ofSeconds(20), command, "--help");

        assertThat(result.exitCode()).as(result.output()).isZero();
        List<String> options = switch (command) {
            case "serve" -> List.of("--model", "--host", "--http-port", "--grpc-port", "--max-in-flight", "--max-num-seqs", "--threads");
            case "generate" -> List.of("--model", "--prompt", "--max-tokens", "--temperature");
            case "export-dummy" -> List.of("--arch", "--dtype", "--out");
            default -> throw new IllegalArgumentException(command);
        };
        assertThat(result.output()).contains("Usage: tandem " + command).contains(options);
    }

    // ---- helpers ----

    private static void assertServesAGoodRequest() throws Exception {
        ReferenceModel.Case once = reference.get("once_upon_a_time");
        JsonNode response = postOk("/v1/completions", Map.of("prompt", once.prompt(), "max_tokens", 8, "temperature", 0));
        assertThat(response.path("choices").path(0).path("text").asText()).isEqualTo(reference.text(once, 8));
    }

    private static void assertUsage(JsonNode usage, int prompt, int completion) {
        assertThat(usage.path("prompt_tokens").asInt()).as("prompt_tokens").isEqualTo(prompt);
        assertThat(usage.path("completion_tokens").asInt()).as("completion_tokens").isEqualTo(completion);
        assertThat(usage.path("total_tokens").asInt()).as("total_tokens").isEqualTo(prompt + completion);
    }

    private static HttpResponse<String> post(String path, Object body) throws Exception {
        return http.send(HttpRequest.newBuilder(base.resolve(path))
                .timeout(Duration.ofSeconds(20))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(body)))
                .build(), HttpResponse.BodyHandlers.ofString());
    }

    private static JsonNode postOk(String path, Object body) throws Exception {
        HttpResponse<String> response = post(path, body);
        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        assertThat(response.headers().firstValue("Content-Type")).hasValueSatisfying(t -> assertThat(t).startsWith("application/json"));
        return JSON.readTree(response.body());
    }

    private static ServerSentEvents postStream(String path, Object body) throws Exception {
        HttpResponse<String> response = post(path, body);
        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        assertThat(response.headers().firstValue("Content-Type")).hasValueSatisfying(t -> assertThat(t).startsWith("text/event-stream"));
        return ServerSentEvents.parse(response.body(), JSON);
    }

    private static HttpResponse<String> get(String path) throws Exception {
        return http.send(HttpRequest.newBuilder(base.resolve(path)).timeout(Duration.ofSeconds(10)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    /** A greedy request for the first {@code n} tokens of {@code c}; prompt text, or ids where the text is empty (unset in proto3). */
    private static GenerateRequest.Builder grpcRequest(ReferenceModel.Case c, int n) {
        GenerateRequest.Builder request = GenerateRequest.newBuilder().setModel(MODEL)
                .setSampling(SamplingParams.newBuilder().setTemperature(0).setMaxTokens(n));
        if (c.prompt().isEmpty()) {
            IntStream.of(c.promptTokenIds()).forEach(request::addPromptTokenIds);
        } else {
            request.setPrompt(c.prompt());
        }
        return request;
    }

    private static List<GenerateResponse> generate(GenerateRequest request) {
        List<GenerateResponse> responses = new ArrayList<>();
        GenerationGrpc.newBlockingStub(channel).withDeadlineAfter(20, TimeUnit.SECONDS).generate(request).forEachRemaining(responses::add);
        return responses;
    }

    private static int[] tokenIds(List<GenerateResponse> responses) {
        return responses.stream().flatMap(r -> r.getTokenIdsList().stream()).mapToInt(Integer::intValue).toArray();
    }

    private static String text(List<GenerateResponse> responses) {
        return responses.stream().map(GenerateResponse::getText).reduce("", String::concat);
    }

    private static EngineGauges awaitGauges(Duration timeout, String what, EngineGauges.Condition condition) throws Exception {
        return EngineGauges.await(http, base.resolve("/metrics"), timeout, what, condition);
    }

    /** Both engines hold no KV block and no request (free == total blocks, nothing running or waiting). */
    private static void awaitIdleEngines(Duration timeout) throws Exception {
        awaitGauges(timeout, "idle with every KV block free", EngineGauges::idle);
    }
}
