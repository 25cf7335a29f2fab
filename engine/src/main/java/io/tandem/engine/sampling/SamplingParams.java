package io.tandem.engine.sampling;

import io.tandem.engine.InvalidArgumentException;
import java.util.List;

/**
 * How to pick each next token, with the OpenAI/vLLM meaning of every field.
 *
 * @param temperature logits are divided by it; {@code 0} means greedy (argmax). Must be {@code >= 0}.
 * @param topP        nucleus sampling: keep the smallest set of tokens whose probability mass is
 *                    at least {@code topP}; in {@code (0, 1]}
 * @param topK        keep the {@code topK} most likely tokens; {@code -1} (or {@code 0}) means all
 * @param maxTokens   tokens to generate at most, {@code >= 1}
 * @param seed        seed of the request's random stream; {@code null} means a random seed
 * @param stop        generation ends before the first occurrence of any of these strings
 * @param ignoreEos   keep generating past the end-of-sequence token
 * @throws InvalidArgumentException naming the field and value when one is out of range
 */
public record SamplingParams(
        float temperature, float topP, int topK, int maxTokens, Long seed, List<String> stop, boolean ignoreEos) {

    /** Tokens generated when a request does not say (the OpenAI completions default). */
    public static final int DEFAULT_MAX_TOKENS = 16;
    /**
     * {@link #maxTokens} value meaning "until EOS or the end of the context" (an OpenAI chat
     * request without a limit); the router replaces it with the room left after the prompt.
     */
    public static final int UNTIL_CONTEXT_END = Integer.MAX_VALUE;
    /** {@link #topK} value meaning "no top-k filtering". */
    public static final int TOP_K_DISABLED = -1;

    public SamplingParams {
        if (!(temperature >= 0f) || Float.isInfinite(temperature)) {
            throw new InvalidArgumentException("temperature", "temperature must be a finite number >= 0, got " + temperature);
        }
        if (!(topP > 0f && topP <= 1f)) {
            throw new InvalidArgumentException("top_p", "top_p must be in (0, 1], got " + topP);
        }
        if (topK == 0) {
            topK = TOP_K_DISABLED;
        }
        if (topK < TOP_K_DISABLED) {
            throw new InvalidArgumentException("top_k", "top_k must be -1 (disabled) or >= 1, got " + topK);
        }
        if (maxTokens < 1) {
            throw new InvalidArgumentException("max_tokens", "max_tokens must be >= 1, got " + maxTokens);
        }
        stop = stop == null ? List.of() : List.copyOf(stop);
        for (String s : stop) {
            if (s.isEmpty()) {
                throw new InvalidArgumentException("stop", "stop strings must not be empty");
            }
        }
    }

    /** Greedy decoding of at most {@code maxTokens} tokens. */
    public static SamplingParams greedy(int maxTokens) {
        return new SamplingParams(0f, 1f, TOP_K_DISABLED, maxTokens, null, List.of(), false);
    }

    /** The same parameters with another {@link #maxTokens}. */
    public SamplingParams withMaxTokens(int tokens) {
        return new SamplingParams(temperature, topP, topK, tokens, seed, stop, ignoreEos);
    }

    /** Whether this picks the argmax (temperature 0, or top-k 1). */
    public boolean isGreedy() {
        return temperature == 0f || topK == 1;
    }
}
