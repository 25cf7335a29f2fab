package io.tandem.bench;

/**
 * One request of a benchmark, as vLLM's {@code SampleRequest}.
 *
 * @param prompt            what is sent
 * @param promptLen         prompt length in tokens: exact for {@link Prompt.TokenIds}, an estimate for
 *                          {@link Prompt.Text} (the server's {@code usage.prompt_tokens} replaces it
 *                          in the metrics when reported)
 * @param expectedOutputLen tokens to generate; sent as {@code max_tokens} with {@code ignore_eos}, so
 *                          the server produces exactly this many
 */
public record SampleRequest(Prompt prompt, int promptLen, int expectedOutputLen) {
    public SampleRequest {
        if (promptLen < 1) {
            throw new IllegalArgumentException("promptLen must be >= 1, got " + promptLen);
        }
        if (expectedOutputLen < 1) {
            throw new IllegalArgumentException("expectedOutputLen must be >= 1, got " + expectedOutputLen);
        }
    }
}
