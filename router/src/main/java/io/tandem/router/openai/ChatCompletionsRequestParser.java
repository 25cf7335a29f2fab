package io.tandem.router.openai;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tandem.engine.InvalidArgumentException;
import io.tandem.engine.sampling.SamplingParams;
import io.tandem.router.ChatTemplate;
import io.tandem.router.CompletionRequest;
import io.tandem.router.GenerationService;
import io.tandem.router.ModelCard;
import io.tandem.router.ModelNotFoundException;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Translates an OpenAI {@code POST /v1/chat/completions} body into a {@link CompletionRequest} whose
 * prompt is the conversation rendered by the model's {@link ChatTemplate}, generation prompt
 * included (vLLM's {@code add_generation_prompt}, default true).
 *
 * <p>A message is {@code {role, content}} with content a string or an array of
 * {@code {"type": "text", "text": …}} parts, joined with {@code "\n"} as vLLM joins them. Role
 * {@code developer} (OpenAI's successor of {@code system}) is rendered as {@code system}.
 * {@code max_completion_tokens} wins over the deprecated {@code max_tokens}; with neither, the
 * limit is {@link SamplingParams#UNTIL_CONTEXT_END}: generate until EOS or the end of the context.
 */
final class ChatCompletionsRequestParser {

    private static final Set<String> ROLES = Set.of("system", "developer", "user", "assistant", "tool");

    private final GenerationService service;

    ChatCompletionsRequestParser(GenerationService service) {
        this.service = service;
    }

    /**
     * @param body      the parsed JSON body
     * @param requestId id of the request, {@code chatcmpl-…}
     * @throws InvalidArgumentException naming the field that is missing, mistyped or out of range,
     *         or ({@code messages}) when the model's template rejects the conversation
     * @throws ModelNotFoundException   when {@code model} is not served
     */
    OpenAiRequest parse(JsonNode body, String requestId) {
        ObjectNode request = RequestFields.requireObject(body);
        String model = RequestFields.optString(request, "model", "model");
        ModelCard card = ServedModels.find(service, model);

        SamplingFields.rejectUnsupportedSampling(request);
        RequestFields.rejectUnsupported(request, "logprobs", l -> l.isBoolean() && !l.booleanValue());
        RequestFields.rejectUnsupported(request, "top_logprobs", t -> t.isNumber() && t.doubleValue() == 0);
        RequestFields.rejectUnsupported(request, "tools", t -> t.isArray() && t.isEmpty());
        RequestFields.rejectUnsupported(request, "tool_choice", c -> "none".equals(c.textValue()));
        RequestFields.rejectUnsupported(request, "response_format", f -> "text".equals(f.path("type").textValue()));

        Integer maxCompletionTokens = SamplingFields.optMaxTokens(request, "max_completion_tokens");
        Integer maxTokens = SamplingFields.optMaxTokens(request, "max_tokens");
        int limit = maxCompletionTokens != null ? maxCompletionTokens : maxTokens != null ? maxTokens : SamplingParams.UNTIL_CONTEXT_END;
        SamplingParams sampling = SamplingFields.parse(request, limit);
        boolean stream = SamplingFields.stream(request);
        boolean includeUsage = SamplingFields.includeUsage(request, stream);
        Boolean addGenerationPrompt = RequestFields.optBoolean(request, "add_generation_prompt", "add_generation_prompt");

        List<ChatTemplate.Message> messages = messages(request);
        String prompt = service.chatTemplate(model).render(messages, addGenerationPrompt == null || addGenerationPrompt);
        CompletionRequest completion = new CompletionRequest(requestId, model, prompt, null, sampling,
                RequestFields.optString(request, "cache_salt", "cache_salt"));
        return new OpenAiRequest(OpenAiRequest.Endpoint.CHAT_COMPLETIONS, completion, card.id(), stream, includeUsage);
    }

    private static List<ChatTemplate.Message> messages(ObjectNode request) {
        JsonNode messages = request.get("messages");
        if (RequestFields.isAbsent(messages)) {
            throw new InvalidArgumentException("messages", "messages is required");
        }
        if (!messages.isArray()) {
            throw RequestFields.wrongType("messages", "an array of messages", messages);
        }
        if (messages.isEmpty()) {
            throw new InvalidArgumentException("messages", "messages must hold at least one message");
        }
        List<ChatTemplate.Message> result = new ArrayList<>(messages.size());
        for (int i = 0; i < messages.size(); i++) {
            result.add(message(messages.get(i), "messages[" + i + "]"));
        }
        return result;
    }

    private static ChatTemplate.Message message(JsonNode node, String param) {
        if (!(node instanceof ObjectNode message)) {
            throw RequestFields.wrongType(param, "an object with role and content", node);
        }
        String role = RequestFields.optString(message, "role", param + ".role");
        if (role == null) {
            throw new InvalidArgumentException(param + ".role", param + ".role is required");
        }
        if (!ROLES.contains(role)) {
            throw new InvalidArgumentException(param + ".role",
                    param + ".role must be one of system, developer, user, assistant, tool; got '" + role + "'");
        }
        return new ChatTemplate.Message(role.equals("developer") ? "system" : role, content(message, param + ".content"));
    }

    private static String content(ObjectNode message, String param) {
        JsonNode content = message.get("content");
        if (RequestFields.isAbsent(content)) {
            throw new InvalidArgumentException(param, param + " is required");
        }
        if (content.isTextual()) {
            return content.textValue();
        }
        if (!content.isArray()) {
            throw RequestFields.wrongType(param, "a string or an array of content parts", content);
        }
        List<String> texts = new ArrayList<>(content.size());
        for (int j = 0; j < content.size(); j++) {
            String partParam = param + "[" + j + "]";
            if (!(content.get(j) instanceof ObjectNode part)) {
                throw RequestFields.wrongType(partParam, "a content part object", content.get(j));
            }
            String type = RequestFields.optString(part, "type", partParam + ".type");
            if (!"text".equals(type)) {
                throw new InvalidArgumentException(partParam + ".type",
                        "only content parts of type text are supported, got " + (type == null ? "none" : "'" + type + "'"));
            }
            String text = RequestFields.optString(part, "text", partParam + ".text");
            if (text == null) {
                throw new InvalidArgumentException(partParam + ".text", partParam + ".text is required");
            }
            texts.add(text);
        }
        return String.join("\n", texts);
    }
}
