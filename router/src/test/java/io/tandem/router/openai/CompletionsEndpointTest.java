package io.tandem.router.openai;

import static io.tandem.router.testing.OpenAiClient.json;
import static io.tandem.router.testing.OpenAiClient.sseData;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.tandem.engine.sampling.SamplingParams;
import io.tandem.router.CompletionRequest;
import io.tandem.router.testing.EchoGenerationService;
import io.tandem.kvcache.testing.NoNettyLeaks;
import io.tandem.router.testing.OpenAiClient;
import java.net.http.HttpResponse;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/** {@code POST /v1/completions} over real loopback HTTP against the echo service. */
@ExtendWith(NoNettyLeaks.class)
@Timeout(30)
class CompletionsEndpointTest {

    private EchoGenerationService service;
    private OpenAiHttpServer server;
    private OpenAiClient client;

    @BeforeEach
    void start() throws InterruptedException {
        service = new EchoGenerationService();
        server = new OpenAiHttpServer(service, new PrometheusRegistry(), 64 << 10, 2).start("127.0.0.1", 0);
        client = new OpenAiClient(server.port());
    }

    @AfterEach
    void stop() {
        client.close();
        server.close();
        service.close();
    }

    @Test
    void shouldAnswerWithOpenAiCompletionObjectCutAtMaxTokens() {
        long before = System.currentTimeMillis() / 1000;

        HttpResponse<String> response = client.post("/v1/completions",
                "{\"model\": \"echo-1\", \"prompt\": \"Hello\", \"max_tokens\": 3}");

        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(response.headers().firstValue("content-type")).hasValue("application/json");
        JsonNode body = json(response.body());
        assertThat(body.get("id").asText()).matches("cmpl-[0-9a-f]{32}");
        assertThat(body.get("object").asText()).isEqualTo("text_completion");
        assertThat(body.get("created").asLong()).isBetween(before, System.currentTimeMillis() / 1000);
        assertThat(body.get("model").asText()).isEqualTo("echo-1");
        assertThat(body.get("choices")).hasSize(1);
        JsonNode choice = body.get("choices").get(0);
        assertThat(choice.get("index").asInt()).isZero();
        assertThat(choice.get("text").asText()).isEqualTo("Hel");
        assertThat(choice.get("logprobs").isNull()).isTrue();
        assertThat(choice.get("finish_reason").asText()).isEqualTo("length");
        assertThat(body.get("usage")).isEqualTo(json("{\"prompt_tokens\": 5, \"completion_tokens\": 3, \"total_tokens\": 8}"));
    }

    @Test
    void shouldApplyOpenAiDefaultsWhenOnlyPromptIsGiven() throws InterruptedException {
        HttpResponse<String> response = client.post("/v1/completions", "{\"prompt\": \"Hi\"}");

        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(json(response.body()).get("model").asText()).isEqualTo(EchoGenerationService.MODEL);
        CompletionRequest request = service.nextAdmitted();
        assertThat(request.model()).isNull();
        assertThat(request.prompt()).isEqualTo("Hi");
        assertThat(request.sampling()).isEqualTo(new SamplingParams(1.0f, 1.0f, -1, 16, null, List.of(), false));
    }

    @Test
    void shouldPassTheCacheSaltThroughAndRejectAnEmptyOne() throws InterruptedException {
        client.post("/v1/completions", "{\"prompt\": \"Hi\", \"cache_salt\": \"tenant-7\"}");
        assertThat(service.nextAdmitted().cacheSalt()).isEqualTo("tenant-7");

        HttpResponse<String> empty = client.post("/v1/completions", "{\"prompt\": \"Hi\", \"cache_salt\": \"\"}");
        assertThat(empty.statusCode()).isEqualTo(400);
        assertThat(json(empty.body()).at("/error/param").asText()).isEqualTo("cache_salt");
    }

    @Test
    void shouldMapEverySamplingFieldToSamplingParams() throws InterruptedException {
        client.post("/v1/completions", """
                {"model": "echo-1", "prompt": "Hi", "max_tokens": 10, "temperature": 0.5, "top_p": 0.9,
                 "top_k": 40, "seed": 42, "stop": ["x", "yz"], "ignore_eos": true}""");

        CompletionRequest request = service.nextAdmitted();
        assertThat(request.requestId()).startsWith("cmpl-");
        assertThat(request.model()).isEqualTo("echo-1");
        assertThat(request.sampling()).isEqualTo(new SamplingParams(0.5f, 0.9f, 40, 10, 42L, List.of("x", "yz"), true));
    }

    @Test
    void shouldEndBeforeStopStringWithFinishReasonStop() {
        HttpResponse<String> response = client.post("/v1/completions", "{\"prompt\": \"Hello world\", \"stop\": \" w\"}");

        JsonNode choice = json(response.body()).get("choices").get(0);
        assertThat(choice.get("text").asText()).isEqualTo("Hello");
        assertThat(choice.get("finish_reason").asText()).isEqualTo("stop");
    }

    @Test
    void shouldPassTokenIdPromptThroughVerbatim() throws InterruptedException {
        HttpResponse<String> response = client.post("/v1/completions", "{\"prompt\": [72, 105]}");

        assertThat(json(response.body()).get("choices").get(0).get("text").asText()).isEqualTo("Hi");
        CompletionRequest request = service.nextAdmitted();
        assertThat(request.prompt()).isNull();
        assertThat(request.promptTokenIds()).containsExactly(72, 105);
    }

    @Test
    void shouldUnwrapBatchOfOnePrompt() throws InterruptedException {
        client.post("/v1/completions", "{\"prompt\": [\"Hi\"]}");
        client.post("/v1/completions", "{\"prompt\": [[72, 105]]}");

        assertThat(service.nextAdmitted().prompt()).isEqualTo("Hi");
        assertThat(service.nextAdmitted().promptTokenIds()).containsExactly(72, 105);
    }

    @Test
    void shouldIgnoreUnknownFields() {
        HttpResponse<String> response = client.post("/v1/completions",
                "{\"prompt\": \"Hi\", \"user\": \"me\", \"vendor_extension\": {\"deep\": [1, 2]}}");

        assertThat(response.statusCode()).isEqualTo(200);
    }

    @Test
    void shouldStreamOneChunkPerTokenThenFinishUsageAndDone() {
        HttpResponse<String> response = client.post("/v1/completions", """
                {"prompt": "Hey", "stream": true, "stream_options": {"include_usage": true}}""");

        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(response.headers().firstValue("content-type")).hasValue("text/event-stream; charset=utf-8");
        assertThat(response.headers().firstValue("transfer-encoding")).hasValue("chunked");
        List<String> events = sseData(response.body());
        assertThat(events).hasSize(6).last().isEqualTo("[DONE]");
        List<JsonNode> chunks = events.subList(0, 5).stream().map(OpenAiClient::json).toList();
        String id = chunks.getFirst().get("id").asText();
        assertThat(id).startsWith("cmpl-");
        assertThat(chunks).allSatisfy(chunk -> {
            assertThat(chunk.get("id").asText()).isEqualTo(id);
            assertThat(chunk.get("object").asText()).isEqualTo("text_completion");
            assertThat(chunk.get("model").asText()).isEqualTo("echo-1");
        });
        assertThat(chunks.subList(0, 4)).extracting(c -> c.get("choices").get(0).get("text").asText())
                .containsExactly("H", "e", "y", "");
        assertThat(chunks.subList(0, 4)).extracting(c -> c.get("choices").get(0).get("finish_reason").asText(null))
                .containsExactly(null, null, null, "stop");
        assertThat(chunks.subList(0, 4)).allSatisfy(c -> assertThat(c.get("usage").isNull()).isTrue());
        JsonNode usageChunk = chunks.get(4);
        assertThat(usageChunk.get("choices")).isEmpty();
        assertThat(usageChunk.get("usage")).isEqualTo(json("{\"prompt_tokens\": 3, \"completion_tokens\": 3, \"total_tokens\": 6}"));
    }

    @Test
    void shouldStreamWithoutUsageChunkUnlessAsked() {
        HttpResponse<String> response = client.post("/v1/completions", "{\"prompt\": \"Hey\", \"max_tokens\": 2, \"stream\": true}");

        List<String> events = sseData(response.body());
        assertThat(events).hasSize(4).last().isEqualTo("[DONE]");
        assertThat(events.subList(0, 3)).allSatisfy(e -> assertThat(json(e).has("usage")).isFalse());
        assertThat(json(events.get(2)).get("choices").get(0).get("finish_reason").asText()).isEqualTo("length");
    }
}
