package io.tandem.router.openai;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tandem.engine.FinishReason;
import io.tandem.router.ModelCard;
import io.tandem.router.Usage;
import java.util.List;

/**
 * The JSON bodies of OpenAI responses, field for field as the OpenAI API (and vLLM) writes them.
 * One request yields one choice, {@code index} 0; {@code logprobs} is always {@code null}.
 *
 * @param id      {@code cmpl-…} or {@code chatcmpl-…}
 * @param created Unix seconds at which the request arrived
 * @param model   model id
 */
record OpenAiResponses(String id, long created, String model) {

    private static final JsonNodeFactory JSON = JsonNodeFactory.instance;

    /** {@code object: "text_completion"} with the whole text and usage. */
    ObjectNode completion(String text, FinishReason reason, Usage usage) {
        ObjectNode root = header("text_completion");
        completionChoice(root.putArray("choices"), text, reason);
        root.set("usage", usage(usage));
        return root;
    }

    /** One streamed {@code text_completion} chunk; {@code reason} is {@code null} until the last. */
    ObjectNode completionChunk(String text, FinishReason reason, boolean includeUsage) {
        ObjectNode root = header("text_completion");
        completionChoice(root.putArray("choices"), text, reason);
        if (includeUsage) {
            root.putNull("usage");
        }
        return root;
    }

    /** {@code object: "chat.completion"} with the assistant message and usage. */
    ObjectNode chatCompletion(String content, FinishReason reason, Usage usage) {
        ObjectNode root = header("chat.completion");
        ObjectNode choice = root.putArray("choices").addObject();
        choice.put("index", 0);
        ObjectNode message = choice.putObject("message");
        message.put("role", "assistant");
        message.put("content", content);
        choice.putNull("logprobs");
        choice.put("finish_reason", reason.openAiName());
        root.set("usage", usage(usage));
        return root;
    }

    /**
     * One {@code chat.completion.chunk}. The first carries {@code delta.role}; the last has an empty
     * {@code delta} and the {@code finish_reason}.
     *
     * @param role    {@code "assistant"} on the first chunk, else {@code null}
     * @param content text delta, or {@code null} for none
     * @param reason  {@code null} until the last chunk
     */
    ObjectNode chatChunk(String role, String content, FinishReason reason, boolean includeUsage) {
        ObjectNode root = header("chat.completion.chunk");
        ObjectNode choice = root.putArray("choices").addObject();
        choice.put("index", 0);
        ObjectNode delta = choice.putObject("delta");
        if (role != null) {
            delta.put("role", role);
        }
        if (content != null) {
            delta.put("content", content);
        }
        choice.putNull("logprobs");
        choice.put("finish_reason", reason == null ? null : reason.openAiName());
        if (includeUsage) {
            root.putNull("usage");
        }
        return root;
    }

    /** The chunk {@code stream_options.include_usage} asks for: {@code choices: []} and the usage. */
    ObjectNode usageChunk(boolean chat, Usage usage) {
        ObjectNode root = header(chat ? "chat.completion.chunk" : "text_completion");
        root.putArray("choices");
        root.set("usage", usage(usage));
        return root;
    }

    /** {@code GET /v1/models}: {@code {object: "list", data: [{id, object: "model", created, owned_by, max_model_len}]}}. */
    static ObjectNode models(List<ModelCard> models) {
        ObjectNode root = JSON.objectNode();
        root.put("object", "list");
        ArrayNode data = root.putArray("data");
        for (ModelCard card : models) {
            ObjectNode model = data.addObject();
            model.put("id", card.id());
            model.put("object", "model");
            model.put("created", card.created());
            model.put("owned_by", card.ownedBy());
            model.put("max_model_len", card.maxModelLen());
        }
        return root;
    }

    private ObjectNode header(String object) {
        ObjectNode root = JSON.objectNode();
        root.put("id", id);
        root.put("object", object);
        root.put("created", created);
        root.put("model", model);
        return root;
    }

    private static void completionChoice(ArrayNode choices, String text, FinishReason reason) {
        ObjectNode choice = choices.addObject();
        choice.put("index", 0);
        choice.put("text", text);
        choice.putNull("logprobs");
        choice.put("finish_reason", reason == null ? null : reason.openAiName());
    }

    private static ObjectNode usage(Usage usage) {
        ObjectNode node = JSON.objectNode();
        node.put("prompt_tokens", usage.promptTokens());
        node.put("completion_tokens", usage.completionTokens());
        node.put("total_tokens", usage.totalTokens());
        return node;
    }
}
