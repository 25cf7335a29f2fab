package io.tandem.router.openai;

import static io.tandem.router.testing.OpenAiClient.json;
import static io.tandem.router.testing.OpenAiClient.sseData;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
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

/**
 * {@code POST /v1/chat/completions} over real loopback HTTP. The echo service answers with the
 * prompt it got, so the answer shows the conversation rendered by the model's chat template
 * (ChatML here).
 */
@ExtendWith(NoNettyLeaks.class)
@Timeout(30)
class ChatCompletionsEndpointTest {

    private static final String RENDERED_HI = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n";

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
    void shouldAnswerWithChatCompletionOfTemplatedPrompt() throws InterruptedException {
        HttpResponse<String> response = client.post("/v1/chat/completions",
                "{\"model\": \"echo-1\", \"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}");

        assertThat(response.statusCode()).isEqualTo(200);
        JsonNode body = json(response.body());
        assertThat(body.get("id").asText()).matches("chatcmpl-[0-9a-f]{32}");
        assertThat(body.get("object").asText()).isEqualTo("chat.completion");
        assertThat(body.get("model").asText()).isEqualTo("echo-1");
        JsonNode choice = body.get("choices").get(0);
        assertThat(choice.get("index").asInt()).isZero();
        assertThat(choice.get("message")).isEqualTo(json(
                "{\"role\": \"assistant\", \"content\": " + OpenAiClient.quote(RENDERED_HI) + "}"));
        assertThat(choice.get("finish_reason").asText()).isEqualTo("stop");
        int tokens = RENDERED_HI.length();
        assertThat(body.get("usage").get("total_tokens").asInt()).isEqualTo(2 * tokens);
        assertThat(service.nextAdmitted().prompt()).isEqualTo(RENDERED_HI);
    }

    @Test
    void shouldAskToGenerateUntilTheEndOfTheContextWhenNoLimitIsGiven() throws InterruptedException {
        client.post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}");

        assertThat(service.nextAdmitted().sampling().maxTokens()).isEqualTo(io.tandem.engine.sampling.SamplingParams.UNTIL_CONTEXT_END);
    }

    @Test
    void shouldPreferMaxCompletionTokensOverMaxTokens() throws InterruptedException {
        HttpResponse<String> response = client.post("/v1/chat/completions", """
                {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 9, "max_completion_tokens": 4}""");

        JsonNode choice = json(response.body()).get("choices").get(0);
        assertThat(choice.get("message").get("content").asText()).isEqualTo("<|im");
        assertThat(choice.get("finish_reason").asText()).isEqualTo("length");
        assertThat(service.nextAdmitted().sampling().maxTokens()).isEqualTo(4);
    }

    @Test
    void shouldJoinTextContentPartsAndRenderDeveloperAsSystem() throws InterruptedException {
        client.post("/v1/chat/completions", """
                {"messages": [
                  {"role": "developer", "content": "Be brief."},
                  {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}]}]}""");

        CompletionRequest request = service.nextAdmitted();
        assertThat(request.prompt()).isEqualTo("<|im_start|>system\nBe brief.<|im_end|>\n"
                + "<|im_start|>user\nHi\nthere<|im_end|>\n<|im_start|>assistant\n");
    }

    @Test
    void shouldStreamRoleDeltaThenContentDeltasThenFinishUsageAndDone() {
        HttpResponse<String> response = client.post("/v1/chat/completions", """
                {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5, "stream": true,
                 "stream_options": {"include_usage": true}}""");

        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(response.headers().firstValue("content-type")).hasValue("text/event-stream; charset=utf-8");
        List<String> events = sseData(response.body());
        assertThat(events.getLast()).isEqualTo("[DONE]");
        List<JsonNode> chunks = events.subList(0, events.size() - 1).stream().map(OpenAiClient::json).toList();
        // role chunk + 5 content chunks + finish chunk + usage chunk
        assertThat(chunks).hasSize(8);
        assertThat(chunks).allSatisfy(c -> assertThat(c.get("object").asText()).isEqualTo("chat.completion.chunk"));
        assertThat(chunks).extracting(c -> c.get("id").asText()).containsOnly(chunks.getFirst().get("id").asText());
        assertThat(chunks.getFirst().get("choices").get(0).get("delta"))
                .isEqualTo(json("{\"role\": \"assistant\", \"content\": \"\"}"));
        StringBuilder content = new StringBuilder();
        for (JsonNode chunk : chunks.subList(1, 6)) {
            JsonNode delta = chunk.get("choices").get(0).get("delta");
            assertThat(delta.has("role")).isFalse();
            content.append(delta.get("content").asText());
            assertThat(chunk.get("choices").get(0).get("finish_reason").isNull()).isTrue();
        }
        assertThat(content).hasToString("<|im_");
        JsonNode finish = chunks.get(6).get("choices").get(0);
        assertThat(finish.get("delta")).isEmpty();
        assertThat(finish.get("finish_reason").asText()).isEqualTo("length");
        assertThat(chunks.get(7).get("choices")).isEmpty();
        assertThat(chunks.get(7).get("usage").get("completion_tokens").asInt()).isEqualTo(5);
    }
}
