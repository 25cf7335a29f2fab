package io.tandem.engine.tokenizer;

/**
 * Kind of a vocabulary entry, as stored in GGUF {@code tokenizer.ggml.token_type} (int32 per token;
 * the values of llama.cpp's {@code llama_token_type}). Decides how a token decodes and whether it
 * is matched literally in text before tokenization (see {@link Vocabulary#split}).
 */
enum TokenType {
    UNDEFINED(0),
    NORMAL(1),
    UNKNOWN(2),
    CONTROL(3),
    USER_DEFINED(4),
    UNUSED(5),
    BYTE(6);

    private final int id;

    TokenType(int id) {
        this.id = id;
    }

    int id() {
        return id;
    }

    /** The type for a GGUF id; ids outside 0..6 read as {@link #UNDEFINED}, as in llama.cpp. */
    static TokenType fromId(int id) {
        for (TokenType t : values()) {
            if (t.id == id) {
                return t;
            }
        }
        return UNDEFINED;
    }

    /** Tokens that text can spell literally: control and unknown ones only with parse-special. */
    boolean isSpecial() {
        return this == CONTROL || this == USER_DEFINED || this == UNKNOWN;
    }
}
