package io.tandem.router.openai;

import static io.tandem.router.testing.OpenAiClient.json;
import static io.tandem.router.testing.OpenAiClient.sseData;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.tandem.router.testing.EchoGenerationService;
import io.tandem.kvcache.testing.NoNettyLeaks;
import io.tandem.router.testing.OpenAiClient;
import java.io.ByteArrayOutputStream;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/** Every way a request can be wrong, and the OpenAI error object and status the client gets. */
@ExtendWith(NoNettyLeaks.class)
@Timeout(30)
class OpenAiErrorResponsesTest {

    private static final int MAX_REQUEST_BYTES = 64 << 10;
    private static final String COMPLETIONS = "/v1/completions";
    private static final String CHAT = "/v1/chat/completions";
    private static final String HI = "[{\"role\": \"user\", \"content\": \"Hi\"}]";

    private EchoGenerationService service;
    private OpenAiHttpServer server;
    private OpenAiClient client;

    @BeforeEach
    void start() throws InterruptedException {
        service = new EchoGenerationService();
        server = new OpenAiHttpServer(service, new PrometheusRegistry(), MAX_REQUEST_BYTES, 2).start("127.0.0.1", 0);
        client = new OpenAiClient(server.port());
    }

    @AfterEach
    void stop() {
        client.close();
        server.close();
        service.close();
    }

    static Stream<Arguments> badRequests() {
        return Stream.of(
                Arguments.of(COMPLETIONS, "{\"prompt\": \"Hi\"", null),
                Arguments.of(COMPLETIONS, "{\"prompt\": \"Hi\"} trailing", null),
                Arguments.of(COMPLETIONS, "[1, 2]", null),
                Arguments.of(COMPLETIONS, "", null),
                Arguments.of(COMPLETIONS, "{}", "prompt"),
                Arguments.of(COMPLETIONS, "{\"prompt\": 5}", "prompt"),
                Arguments.of(COMPLETIONS, "{\"prompt\": []}", "prompt"),
                Arguments.of(COMPLETIONS, "{\"prompt\": [\"a\", \"b\"]}", "prompt"),
                Arguments.of(COMPLETIONS, "{\"prompt\": [1, -1]}", "prompt[1]"),
                Arguments.of(COMPLETIONS, "{\"prompt\": \"" + EchoGenerationService.INVALID_PROMPT + "\"}", "prompt"),
                Arguments.of(COMPLETIONS, "{\"prompt\": \"Hi\", \"model\": 5}", "model"),
                Arguments.of(COMPLETIONS, "{\"prompt\": \"Hi\", \"max_tokens\": \"abc\"}", "max_tokens"),
                Arguments.of(COMPLETIONS, "{\"prompt\": \"Hi\", \"max_tokens\": 0}", "max_tokens"),
                Arguments.of(COMPLETIONS, "{\"prompt\": \"Hi\", \"max_tokens\": 2.5}", "max_tokens"),
                Arguments.of(COMPLETIONS, "{\"prompt\": \"Hi\", \"max_tokens\": 99999999999}", "max_tokens"),
                Arguments.of(COMPLETIONS, "{\"prompt\": \"Hi\", \"temperature\": -1}", "temperature"),
                Arguments.of(COMPLETIONS, "{\"prompt\": \"Hi\", \"temperature\": \"hot\"}", "temperature"),
                Arguments.of(COMPLETIONS, "{\"prompt\": \"Hi\", \"top_p\": 0}", "top_p"),
                Arguments.of(COMPLETIONS, "{\"prompt\": \"Hi\", \"top_p\": 1.5}", "top_p"),
                Arguments.of(COMPLETIONS, "{\"prompt\": \"Hi\", \"top_k\": -2}", "top_k"),
                Arguments.of(COMPLETIONS, "{\"prompt\": \"Hi\", \"seed\": \"x\"}", "seed"),
                Arguments.of(COMPLETIONS, "{\"prompt\": \"Hi\", \"stop\": 5}", "stop"),
                Arguments.of(COMPLETIONS, "{\"prompt\": \"Hi\", \"stop\": [\"a\", 1]}", "stop[1]"),
                Arguments.of(COMPLETIONS, "{\"prompt\": \"Hi\", \"stop\": [\"\"]}", "stop"),
                Arguments.of(COMPLETIONS, "{\"prompt\": \"Hi\", \"stream\": \"yes\"}", "stream"),
                Arguments.of(COMPLETIONS, "{\"prompt\": \"Hi\", \"stream_options\": {\"include_usage\": true}}", "stream_options"),
                Arguments.of(COMPLETIONS, "{\"prompt\": \"Hi\", \"stream\": true, \"stream_options\": {\"include_usage\": 1}}",
                        "stream_options.include_usage"),
                Arguments.of(COMPLETIONS, "{\"prompt\": \"Hi\", \"n\": 2}", "n"),
                Arguments.of(COMPLETIONS, "{\"prompt\": \"Hi\", \"best_of\": 3}", "best_of"),
                Arguments.of(COMPLETIONS, "{\"prompt\": \"Hi\", \"logprobs\": 1}", "logprobs"),
                Arguments.of(COMPLETIONS, "{\"prompt\": \"Hi\", \"echo\": true}", "echo"),
                Arguments.of(COMPLETIONS, "{\"prompt\": \"Hi\", \"presence_penalty\": 0.5}", "presence_penalty"),
                Arguments.of(CHAT, "{}", "messages"),
                Arguments.of(CHAT, "{\"messages\": \"Hi\"}", "messages"),
                Arguments.of(CHAT, "{\"messages\": []}", "messages"),
                Arguments.of(CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\"}]}",
                        "messages[1].content"),
                Arguments.of(CHAT, "{\"messages\": [{\"content\": \"Hi\"}]}", "messages[0].role"),
                Arguments.of(CHAT, "{\"messages\": [{\"role\": \"wizard\", \"content\": \"Hi\"}]}", "messages[0].role"),
                Arguments.of(CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]}",
                        "messages[0].content[0].type"),
                Arguments.of(CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": 7}]}", "messages[0].content"),
                Arguments.of(CHAT, "{\"messages\": " + HI + ", \"max_completion_tokens\": 0}", "max_completion_tokens"),
                Arguments.of(CHAT, "{\"messages\": " + HI + ", \"max_tokens\": \"abc\"}", "max_tokens"),
                Arguments.of(CHAT, "{\"messages\": " + HI + ", \"temperature\": -1}", "temperature"),
                Arguments.of(CHAT, "{\"messages\": " + HI + ", \"top_p\": 1.5}", "top_p"),
                Arguments.of(CHAT, "{\"messages\": " + HI + ", \"logprobs\": true}", "logprobs"),
                Arguments.of(CHAT, "{\"messages\": " + HI + ", \"tools\": [{\"type\": \"function\"}]}", "tools"),
                // The router refuses the rendered prompt (e.g. longer than the context): the chat field is messages.
                Arguments.of(CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \""
                        + EchoGenerationService.INVALID_PROMPT + "\"}]}", "messages"));
    }

    @ParameterizedTest(name = "{0} {1} -> param {2}")
    @MethodSource("badRequests")
    void shouldAnswer400InvalidRequestNamingTheField(String path, String body, String param) {
        HttpResponse<String> response = client.post(path, body);

        assertThat(response.statusCode()).isEqualTo(400);
        assertThat(response.headers().firstValue("content-type")).hasValue("application/json");
        JsonNode error = json(response.body()).get("error");
        assertThat(error.get("type").asText()).isEqualTo("invalid_request_error");
        assertThat(error.get("param").isNull() ? null : error.get("param").asText()).isEqualTo(param);
        assertThat(error.get("code").isNull()).isTrue();
        assertThat(error.get("message").asText()).isNotBlank();
        assertThat(service.admitted()).isEmpty();
    }

    @Test
    void shouldRejectBodyThatIsNotValidUtf8() {
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        body.writeBytes("{\"prompt\": \"".getBytes(StandardCharsets.US_ASCII));
        body.writeBytes(new byte[] {(byte) 0xC3, (byte) 0x28});
        body.writeBytes("\"}".getBytes(StandardCharsets.US_ASCII));

        HttpResponse<String> response = client.postBytes(COMPLETIONS, body.toByteArray());

        assertThat(response.statusCode()).isEqualTo(400);
        assertThat(json(response.body()).get("error").get("message").asText()).contains("UTF-8");
    }

    @Test
    void shouldAnswer404ModelNotFoundForUnknownModelOnBothEndpoints() {
        HttpResponse<String> completion = client.post(COMPLETIONS, "{\"model\": \"gpt-9\", \"prompt\": \"Hi\"}");
        HttpResponse<String> chat = client.post(CHAT, "{\"model\": \"gpt-9\", \"messages\": " + HI + "}");

        for (HttpResponse<String> response : List.of(completion, chat)) {
            assertThat(response.statusCode()).isEqualTo(404);
            JsonNode error = json(response.body()).get("error");
            assertThat(error.get("type").asText()).isEqualTo("invalid_request_error");
            assertThat(error.get("code").asText()).isEqualTo("model_not_found");
            assertThat(error.get("param").asText()).isEqualTo("model");
            assertThat(error.get("message").asText()).contains("gpt-9");
        }
    }

    @Test
    void shouldAnswer429WithRetryAfterWhenRouterIsOverloaded() {
        HttpResponse<String> response = client.post(COMPLETIONS, "{\"prompt\": \"" + EchoGenerationService.OVERLOAD_PROMPT + "\"}");

        assertThat(response.statusCode()).isEqualTo(429);
        assertThat(response.headers().firstValue("retry-after")).hasValue(String.valueOf(EchoGenerationService.RETRY_AFTER_SECONDS));
        assertThat(json(response.body()).get("error").get("type").asText()).isEqualTo("overloaded_error");
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void shouldAnswer429WithRetryAfterWhenAWorkerRefusesTheRequestBeforeItsFirstToken(boolean stream) {
        HttpResponse<String> response = client.post(COMPLETIONS,
                "{\"prompt\": \"" + EchoGenerationService.OVERLOAD_LATER_PROMPT + "\", \"stream\": " + stream + "}");

        assertThat(response.statusCode()).isEqualTo(429);
        assertThat(response.headers().firstValue("retry-after")).hasValue(String.valueOf(EchoGenerationService.RETRY_AFTER_SECONDS));
        assertThat(response.headers().firstValue("content-type")).hasValueSatisfying(t -> assertThat(t).contains("json"));
        assertThat(json(response.body()).get("error").get("type").asText()).isEqualTo("overloaded_error");
    }

    @Test
    void shouldAnswer404ForUnknownPath() {
        HttpResponse<String> response = client.post("/v1/engines", "{}");

        assertThat(response.statusCode()).isEqualTo(404);
        assertThat(json(response.body()).get("error").get("message").asText()).isEqualTo("Invalid URL (POST /v1/engines)");
    }

    @Test
    void shouldAnswer405WithAllowHeaderForWrongMethod() {
        HttpResponse<String> get = client.get(COMPLETIONS);
        HttpResponse<String> delete = client.send("DELETE", "/v1/models");

        assertThat(get.statusCode()).isEqualTo(405);
        assertThat(get.headers().firstValue("allow")).hasValue("POST");
        assertThat(json(get.body()).get("error").get("type").asText()).isEqualTo("invalid_request_error");
        assertThat(delete.statusCode()).isEqualTo(405);
        assertThat(delete.headers().firstValue("allow")).hasValue("GET");
    }

    @Test
    void shouldAnswer413ForBodyOverLimitAndKeepServing() {
        String prompt = "a".repeat(MAX_REQUEST_BYTES + 1);

        HttpResponse<String> tooLarge = client.post(COMPLETIONS, "{\"prompt\": \"" + prompt + "\"}");
        HttpResponse<String> next = client.post(COMPLETIONS, "{\"prompt\": \"Hi\"}");

        assertThat(tooLarge.statusCode()).isEqualTo(413);
        assertThat(json(tooLarge.body()).get("error").get("message").asText()).contains(String.valueOf(MAX_REQUEST_BYTES));
        assertThat(next.statusCode()).isEqualTo(200);
    }

    @Test
    void shouldEndStreamWithErrorEventAndDoneWhenGenerationFailsAfterStart() {
        HttpResponse<String> response = client.post(COMPLETIONS,
                "{\"prompt\": \"" + EchoGenerationService.FAIL_PREFIX + "!\", \"stream\": true}");

        assertThat(response.statusCode()).isEqualTo(200);
        List<String> events = sseData(response.body());
        assertThat(events).hasSize(3);
        assertThat(json(events.get(0)).get("choices").get(0).get("text").asText()).isEqualTo("f");
        JsonNode error = json(events.get(1)).get("error");
        assertThat(error.get("type").asText()).isEqualTo("server_error");
        assertThat(error.get("message").asText()).contains(EchoGenerationService.FAILURE_MESSAGE);
        assertThat(events.get(2)).isEqualTo("[DONE]");
    }

    @Test
    void shouldAnswer500ServerErrorWhenGenerationFailsWithoutStreaming() {
        HttpResponse<String> response = client.post(COMPLETIONS, "{\"prompt\": \"" + EchoGenerationService.FAIL_PREFIX + "\"}");

        assertThat(response.statusCode()).isEqualTo(500);
        JsonNode error = json(response.body()).get("error");
        assertThat(error.get("type").asText()).isEqualTo("server_error");
        assertThat(error.get("message").asText()).contains(EchoGenerationService.FAILURE_MESSAGE);
    }
}
