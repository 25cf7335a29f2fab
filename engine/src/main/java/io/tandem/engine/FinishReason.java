package io.tandem.engine;

/** Why a sequence stopped, with the OpenAI {@code finish_reason} spelling. */
public enum FinishReason {
    /** The end-of-sequence token or a stop string was produced. */
    STOP("stop"),
    /** {@code max_tokens} or the model's context length was reached. */
    LENGTH("length"),
    /** The server ended the request (shutdown, cancellation, a failed KV hand-off). */
    ABORT("abort");

    private final String openAiName;

    FinishReason(String openAiName) {
        this.openAiName = openAiName;
    }

    /** The value of OpenAI's {@code finish_reason} field. */
    public String openAiName() {
        return openAiName;
    }
}
