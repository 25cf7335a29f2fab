package io.tandem.router.openai;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tandem.engine.InvalidArgumentException;
import io.tandem.engine.sampling.SamplingParams;
import io.tandem.router.CompletionRequest;
import io.tandem.router.GenerationService;
import io.tandem.router.ModelCard;
import io.tandem.router.ModelNotFoundException;

/**
 * Translates an OpenAI {@code POST /v1/completions} body into a {@link CompletionRequest}.
 *
 * <p>{@code prompt} is a string or an array of token ids. One prompt per request: an array holding
 * a single string or a single token-id array is unwrapped, a batch of several prompts is rejected
 * (send one request each). {@code max_tokens} defaults to 16 as in OpenAI's API. {@code n},
 * {@code best_of} other than 1, {@code logprobs}, {@code echo}, {@code suffix} and penalties are
 * rejected with 400 naming the field; unknown fields are ignored.
 */
final class CompletionsRequestParser {

    private final GenerationService service;

    CompletionsRequestParser(GenerationService service) {
        this.service = service;
    }

    /**
     * @param body      the parsed JSON body
     * @param requestId id of the request, {@code cmpl-…}
     * @throws InvalidArgumentException naming the field that is missing, mistyped or out of range
     * @throws ModelNotFoundException   when {@code model} is not served
     */
    OpenAiRequest parse(JsonNode body, String requestId) {
        ObjectNode request = RequestFields.requireObject(body);
        String model = RequestFields.optString(request, "model", "model");
        ModelCard card = ServedModels.find(service, model);

        SamplingFields.rejectUnsupportedSampling(request);
        RequestFields.rejectUnsupported(request, "best_of", n -> n.isNumber() && n.doubleValue() == 1);
        RequestFields.rejectUnsupported(request, "logprobs", n -> false);
        RequestFields.rejectUnsupported(request, "echo", e -> e.isBoolean() && !e.booleanValue());
        RequestFields.rejectUnsupported(request, "suffix", s -> s.isTextual() && s.textValue().isEmpty());

        Integer maxTokens = SamplingFields.optMaxTokens(request, "max_tokens");
        SamplingParams sampling = SamplingFields.parse(request,
                maxTokens == null ? SamplingParams.DEFAULT_MAX_TOKENS : maxTokens);
        boolean stream = SamplingFields.stream(request);
        boolean includeUsage = SamplingFields.includeUsage(request, stream);

        JsonNode prompt = request.get("prompt");
        if (RequestFields.isAbsent(prompt)) {
            throw new InvalidArgumentException("prompt", "prompt is required");
        }
        // A one-element batch is the same request as its element (clients such as lm-eval send [prompt]).
        if (prompt.isArray() && prompt.size() == 1 && (prompt.get(0).isTextual() || prompt.get(0).isArray())) {
            prompt = prompt.get(0);
        }
        CompletionRequest completion;
        if (prompt.isTextual()) {
            completion = new CompletionRequest(requestId, model, prompt.textValue(), null, sampling, cacheSalt(request));
        } else if (prompt.isArray()) {
            completion = new CompletionRequest(requestId, model, null, tokenIds(prompt), sampling, cacheSalt(request));
        } else {
            throw RequestFields.wrongType("prompt", "a string or an array of token ids", prompt);
        }
        return new OpenAiRequest(OpenAiRequest.Endpoint.COMPLETIONS, completion, card.id(), stream, includeUsage);
    }

    private static int[] tokenIds(JsonNode prompt) {
        if (prompt.isEmpty()) {
            throw new InvalidArgumentException("prompt", "prompt must not be empty");
        }
        int[] ids = new int[prompt.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode element = prompt.get(i);
            if (element.isTextual() || element.isArray()) {
                throw new InvalidArgumentException("prompt",
                        "batched prompts (" + prompt.size() + " in one request) are not supported; send one request per prompt");
            }
            ids[i] = RequestFields.intValue(element, "prompt[" + i + "]");
            if (ids[i] < 0) {
                throw new InvalidArgumentException("prompt[" + i + "]", "token ids must be >= 0, got " + ids[i]);
            }
        }
        return ids;
    }

    private static String cacheSalt(ObjectNode request) {
        return RequestFields.optString(request, "cache_salt", "cache_salt");
    }
}
