package io.tandem.router;

/**
 * Token counts of one request, as OpenAI's {@code usage} object reports them.
 *
 * @param promptTokens     tokens of the prompt, BOS included
 * @param completionTokens tokens generated
 */
public record Usage(int promptTokens, int completionTokens) {
    /** {@code promptTokens + completionTokens}. */
    public int totalTokens() {
        return promptTokens + completionTokens;
    }
}
