package io.tandem.bench;

import java.util.List;

/**
 * How a synthetic prompt, generated as token ids, goes on the wire. Completions and gRPC take the
 * ids verbatim; chat takes only text, and without the server's tokenizer there is no exact
 * detokenization, so each id becomes one word of a fixed list ({@code WORDS[id mod size]}). Equal
 * ids give equal words, so shared prefixes and Mooncake blocks stay shared; the prompt's true token
 * count is what the server reports in {@code usage.prompt_tokens}.
 */
public enum PromptForm {
    TOKEN_IDS,
    TEXT;

    /** Short common English words; most are one token in Llama-style BPE vocabularies. */
    static final List<String> WORDS = List.of(
            "the", "cat", "dog", "sat", "on", "a", "mat", "and", "ran", "to", "park", "with", "her", "his", "big",
            "red", "ball", "day", "sun", "was", "happy", "saw", "tree", "bird", "sang", "song", "one", "little",
            "girl", "boy", "named", "they", "play", "went", "home", "mom", "said", "let", "us", "go", "box", "toy",
            "friend", "fun", "time", "upon", "there", "blue", "sky", "water", "fish", "swim", "jump", "high", "run",
            "fast", "slow", "good", "kind", "nice", "new", "old", "car", "book");

    /** The prompt for {@code ids} in this form. */
    public Prompt encode(int[] ids) {
        return switch (this) {
            case TOKEN_IDS -> new Prompt.TokenIds(ids);
            case TEXT -> new Prompt.Text(words(ids));
        };
    }

    private static String words(int[] ids) {
        StringBuilder text = new StringBuilder(ids.length * 5);
        for (int id : ids) {
            if (!text.isEmpty()) {
                text.append(' ');
            }
            text.append(WORDS.get(Math.floorMod(id, WORDS.size())));
        }
        return text.toString();
    }
}
