package io.tandem.bench;

import java.util.Arrays;

/**
 * Collects what a backend sees of one streamed request (timestamps from {@link System#nanoTime()})
 * and turns it into a {@link RequestResult} with vLLM's definitions: TTFT at the first chunk
 * carrying tokens, one ITL value per later such chunk, E2E at the last one. Chunks carrying no
 * tokens (role-only or finish-only chunks, the usage chunk) are not timed: counting them would
 * add near-zero gaps to ITL.
 *
 * <p>One stream's events come one at a time (HTTP line subscribers and gRPC observers are called
 * serially); the result is read after the stream ended, through a happens-before edge (a
 * completed future).
 */
final class RequestTimeline {

    /** The server reported no usage. */
    static final int UNREPORTED = -1;

    private final long sendNanos;
    private long firstTokenNanos;
    private long lastTokenNanos;
    private int tokenChunks;
    private int streamedTokens;
    private long[] itlNanos = new long[16];
    private int promptTokens = UNREPORTED;
    private int completionTokens = UNREPORTED;

    RequestTimeline(long sendNanos) {
        this.sendNanos = sendNanos;
    }

    /**
     * A chunk carrying {@code tokens >= 1} tokens arrived at {@code nowNanos}. Text chunks whose
     * token count is unknown pass 1.
     */
    void onTokens(long nowNanos, int tokens) {
        if (tokenChunks == 0) {
            firstTokenNanos = nowNanos;
        } else {
            if (tokenChunks - 1 == itlNanos.length) {
                itlNanos = Arrays.copyOf(itlNanos, itlNanos.length * 2);
            }
            itlNanos[tokenChunks - 1] = nowNanos - lastTokenNanos;
        }
        lastTokenNanos = nowNanos;
        tokenChunks++;
        streamedTokens += tokens;
    }

    /** The server's usage figures (the last message of the stream). */
    void onUsage(int promptTokens, int completionTokens) {
        this.promptTokens = promptTokens;
        this.completionTokens = completionTokens;
    }

    /**
     * The result of a stream that ended without error: a {@link RequestResult.Success}, or a failure
     * when no chunk carried tokens (TTFT is then undefined, as vLLM reports it).
     *
     * @param estimatedPromptTokens the dataset's prompt length, used when the server reported no usage
     */
    RequestResult finish(int estimatedPromptTokens) {
        if (tokenChunks == 0) {
            return new RequestResult.Failure("Never received a valid chunk to calculate TTFT.");
        }
        int output = completionTokens > 0 ? completionTokens : streamedTokens;
        int prompt = promptTokens > 0 ? promptTokens : estimatedPromptTokens;
        return new RequestResult.Success(prompt, output, firstTokenNanos - sendNanos, lastTokenNanos - sendNanos,
                Arrays.copyOf(itlNanos, tokenChunks - 1));
    }
}
