package io.tandem.bench;

import java.math.BigDecimal;
import java.time.Duration;

/**
 * How one benchmark request ended, as vLLM's {@code RequestFuncOutput}. Durations are nanoseconds
 * measured from the moment the request was sent (after any {@code --max-concurrency} wait).
 */
public sealed interface RequestResult {

    /**
     * A request that streamed at least one token and finished without error.
     *
     * @param promptTokens prompt length: the server's {@code usage.prompt_tokens}, else the dataset's
     * @param outputTokens generated tokens: the server's {@code usage.completion_tokens}, else counted
     *                     from the stream
     * @param ttftNanos    send → first chunk carrying tokens
     * @param e2elNanos    send → last chunk carrying tokens
     * @param itlNanos     every gap between consecutive chunks carrying tokens ({@code chunks − 1} values)
     */
    record Success(int promptTokens, int outputTokens, long ttftNanos, long e2elNanos, long[] itlNanos) implements RequestResult {
        public Success {
            if (outputTokens < 1) {
                throw new IllegalArgumentException("a successful request has >= 1 output token, got " + outputTokens);
            }
            if (ttftNanos < 0 || e2elNanos < ttftNanos) {
                throw new IllegalArgumentException("need 0 <= ttft <= e2el, got ttft " + ttftNanos + " ns, e2el " + e2elNanos + " ns");
            }
        }

        /** Whether TPOT is defined: more than one output token. */
        public boolean hasTpot() {
            return outputTokens > 1;
        }

        /**
         * Time per output token after the first, vLLM's TPOT: {@code (E2E − TTFT) / (output − 1)};
         * 0 when {@link #hasTpot()} is false (vLLM counts such requests as meeting any TPOT SLO).
         */
        public double tpotNanos() {
            return hasTpot() ? (double) (e2elNanos - ttftNanos) / (outputTokens - 1) : 0;
        }
    }

    /**
     * A request that failed.
     *
     * @param reason what went wrong, e.g. {@code HTTP 404: The model 'x' does not exist} or
     *               {@code gRPC NOT_FOUND: …}; requests failing alike share the text so that they
     *               group in the report
     */
    record Failure(String reason) implements RequestResult {

        /** The request did not end within {@code --timeout}. */
        static Failure timeout(Duration timeout) {
            return new Failure("timeout after " + BigDecimal.valueOf(timeout.toMillis(), 3).stripTrailingZeros().toPlainString() + " s");
        }

        /** An I/O failure on the client side, e.g. {@code ConnectException: Connection refused}. */
        static Failure of(Throwable error) {
            return new Failure(error.getClass().getSimpleName() + (error.getMessage() == null ? "" : ": " + error.getMessage()));
        }
    }
}
