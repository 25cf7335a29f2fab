package io.tandem.bench;

import java.util.Arrays;

/**
 * What one benchmark request sends as its prompt: token ids the server uses verbatim (OpenAI
 * completions {@code prompt: [ids]}, gRPC {@code prompt_token_ids}) or text the server tokenizes
 * (completions {@code prompt: "…"}, chat {@code messages[0].content}, gRPC {@code prompt}).
 */
public sealed interface Prompt {

    /** Token ids, sent verbatim; the prompt length is exactly {@code ids.length} tokens. */
    record TokenIds(int[] ids) implements Prompt {
        public TokenIds {
            if (ids.length == 0) {
                throw new IllegalArgumentException("a token-id prompt needs at least one id");
            }
        }

        @Override
        public boolean equals(Object other) {
            return other instanceof TokenIds that && Arrays.equals(ids, that.ids);
        }

        @Override
        public int hashCode() {
            return Arrays.hashCode(ids);
        }

        @Override
        public String toString() {
            return "TokenIds[" + ids.length + " ids]";
        }
    }

    /** Text, tokenized by the server. */
    record Text(String text) implements Prompt {
        public Text {
            if (text.isEmpty()) {
                throw new IllegalArgumentException("a text prompt must not be empty");
            }
        }
    }
}
