package io.tandem.router.openai;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tandem.engine.InvalidArgumentException;
import io.tandem.engine.sampling.SamplingParams;
import java.util.List;

/**
 * The sampling and streaming fields both generation endpoints share, with OpenAI's defaults
 * ({@code temperature} 1, {@code top_p} 1) and vLLM's extensions ({@code top_k} -1,
 * {@code ignore_eos} false). Range checks are {@link SamplingParams}'s, so both public APIs agree.
 */
final class SamplingFields {

    /** OpenAI's default {@code temperature}: sample from the model's distribution unchanged. */
    static final float DEFAULT_TEMPERATURE = 1.0f;
    static final float DEFAULT_TOP_P = 1.0f;

    private SamplingFields() {}

    /**
     * @param maxTokens the already resolved {@code max_tokens} (endpoints differ in field names and defaults)
     * @throws InvalidArgumentException naming the field for a wrong type or an out-of-range value
     */
    static SamplingParams parse(ObjectNode body, int maxTokens) {
        Float temperature = RequestFields.optFloat(body, "temperature", "temperature");
        Float topP = RequestFields.optFloat(body, "top_p", "top_p");
        Integer topK = RequestFields.optInt(body, "top_k", "top_k");
        Long seed = RequestFields.optLong(body, "seed", "seed");
        List<String> stop = RequestFields.optStop(body);
        Boolean ignoreEos = RequestFields.optBoolean(body, "ignore_eos", "ignore_eos");
        return new SamplingParams(
                temperature == null ? DEFAULT_TEMPERATURE : temperature,
                topP == null ? DEFAULT_TOP_P : topP,
                topK == null ? SamplingParams.TOP_K_DISABLED : topK,
                maxTokens,
                seed,
                stop,
                ignoreEos != null && ignoreEos);
    }

    /**
     * Reads an optional token limit.
     *
     * @return the value, or {@code null} when absent
     * @throws InvalidArgumentException ({@code field}) unless it is an integer {@code >= 1}
     */
    static Integer optMaxTokens(ObjectNode body, String field) {
        Integer value = RequestFields.optInt(body, field, field);
        if (value != null && value < 1) {
            throw new InvalidArgumentException(field, field + " must be >= 1, got " + value);
        }
        return value;
    }

    /** {@code stream} (default false). */
    static boolean stream(ObjectNode body) {
        Boolean stream = RequestFields.optBoolean(body, "stream", "stream");
        return stream != null && stream;
    }

    /**
     * {@code stream_options.include_usage} (default false).
     *
     * @throws InvalidArgumentException ({@code stream_options}) when given without {@code stream: true},
     *         as OpenAI and vLLM reject it
     */
    static boolean includeUsage(ObjectNode body, boolean stream) {
        JsonNode options = body.get("stream_options");
        if (RequestFields.isAbsent(options)) {
            return false;
        }
        if (!stream) {
            throw new InvalidArgumentException("stream_options", "stream_options is only allowed when stream is true");
        }
        if (!(options instanceof ObjectNode object)) {
            throw RequestFields.wrongType("stream_options", "an object", options);
        }
        Boolean includeUsage = RequestFields.optBoolean(object, "include_usage", "stream_options.include_usage");
        return includeUsage != null && includeUsage;
    }

    /** Rejections of OpenAI / vLLM fields Tandem does not implement, shared by both endpoints. */
    static void rejectUnsupportedSampling(ObjectNode body) {
        RequestFields.rejectUnsupported(body, "n", n -> n.isNumber() && n.doubleValue() == 1);
        RequestFields.rejectUnsupported(body, "presence_penalty", p -> p.isNumber() && p.doubleValue() == 0);
        RequestFields.rejectUnsupported(body, "frequency_penalty", p -> p.isNumber() && p.doubleValue() == 0);
        RequestFields.rejectUnsupported(body, "repetition_penalty", p -> p.isNumber() && p.doubleValue() == 1);
        RequestFields.rejectUnsupported(body, "min_p", p -> p.isNumber() && p.doubleValue() == 0);
        RequestFields.rejectUnsupported(body, "logit_bias", b -> b.isObject() && b.isEmpty());
        RequestFields.rejectUnsupported(body, "use_beam_search", b -> b.isBoolean() && !b.booleanValue());
    }
}
