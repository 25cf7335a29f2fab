package io.tandem.engine.tokenizer;

import io.tandem.engine.gguf.GgufFile;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The token table both tokenizers share: token strings, scores and types from GGUF
 * {@code tokenizer.ggml.*}, the special ids, and the split of text around special tokens.
 * Immutable after construction.
 */
final class Vocabulary {
    static final String MODEL_KEY = "tokenizer.ggml.model";
    static final String TOKENS_KEY = "tokenizer.ggml.tokens";
    static final String SCORES_KEY = "tokenizer.ggml.scores";
    static final String TOKEN_TYPE_KEY = "tokenizer.ggml.token_type";
    static final String BOS_KEY = "tokenizer.ggml.bos_token_id";
    static final String EOS_KEY = "tokenizer.ggml.eos_token_id";
    static final String UNK_KEY = "tokenizer.ggml.unknown_token_id";
    static final String EOT_KEY = "tokenizer.ggml.eot_token_id";
    static final String EOM_KEY = "tokenizer.ggml.eom_token_id";
    static final String ADD_BOS_KEY = "tokenizer.ggml.add_bos_token";
    /** Id meaning "the vocabulary has no such token". */
    static final int NONE = -1;

    /**
     * Token texts that end a generation; llama.cpp forces them to CONTROL type when the converter
     * did not, and stops on them (llama-vocab.cpp, "maintain a list of tokens that cause end-of-generation").
     */
    private static final Set<String> EOG_TEXTS = Set.of("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
            "<|endoftext|>", "<|eom_id|>", "<EOT>");

    /** A piece of input text: either raw text {@code [start, end)} or one special token. */
    record Fragment(int tokenId, int start, int end) {
        boolean isText() {
            return tokenId == NONE;
        }
    }

    private final String[] texts;
    private final float[] scores;
    private final TokenType[] types;
    private final Map<String, Integer> ids;
    private final int bosId;
    private final int eosId;
    private final int unkId;
    private final boolean[] endOfGeneration;
    /** Ids of CONTROL / USER_DEFINED / UNKNOWN tokens, longest UTF-8 text first (then lowest id). */
    private final int[] specialIds;

    private Vocabulary(String[] texts, float[] scores, TokenType[] types, int bosId, int eosId, int unkId, int[] extraEog) {
        this.texts = texts;
        this.scores = scores;
        this.types = types;
        this.ids = new HashMap<>(texts.length * 2);
        for (int i = 0; i < texts.length; i++) {
            ids.put(texts[i], i); // a later duplicate wins, as in llama.cpp's token_to_id
        }
        this.bosId = bosId;
        this.eosId = eosId;
        this.unkId = unkId;
        this.endOfGeneration = new boolean[texts.length];
        for (int i = 0; i < texts.length; i++) {
            if (EOG_TEXTS.contains(texts[i])) {
                endOfGeneration[i] = true;
                types[i] = TokenType.CONTROL;
            }
        }
        if (eosId != NONE) {
            endOfGeneration[eosId] = true;
        }
        for (int id : extraEog) {
            endOfGeneration[id] = true;
        }
        int[] byteLength = new int[texts.length];
        List<Integer> special = new ArrayList<>();
        for (int i = 0; i < texts.length; i++) {
            if (types[i].isSpecial() && !texts[i].isEmpty()) {
                special.add(i);
                byteLength[i] = texts[i].getBytes(StandardCharsets.UTF_8).length;
            }
        }
        special.sort(Comparator.<Integer>comparingInt(i -> -byteLength[i]).thenComparingInt(i -> i));
        this.specialIds = special.stream().mapToInt(Integer::intValue).toArray();
    }

    /**
     * Reads {@code tokenizer.ggml.tokens} (required), {@code .scores} (default 0), {@code .token_type}
     * (default NORMAL) and the special ids. An id key that is absent, "none" (uint32 max) or outside
     * the vocabulary leaves the given default, as llama.cpp does.
     *
     * @throws IllegalArgumentException naming the key if the tokens are missing or an array's length differs
     */
    static Vocabulary fromGguf(GgufFile gguf, int defaultBos, int defaultEos, int defaultUnk) {
        String[] texts = gguf.getStringArray(TOKENS_KEY);
        int n = texts.length;
        float[] scores = gguf.findValue(SCORES_KEY).isPresent() ? gguf.getFloatArray(SCORES_KEY) : new float[n];
        int[] typeIds = gguf.findValue(TOKEN_TYPE_KEY).isPresent() ? gguf.getIntArray(TOKEN_TYPE_KEY) : null;
        if (scores.length != n || (typeIds != null && typeIds.length != n)) {
            throw new IllegalArgumentException("GGUF tokenizer arrays disagree: " + n + " tokens, " + scores.length
                    + " scores, " + (typeIds == null ? "no" : typeIds.length) + " token types");
        }
        TokenType[] types = new TokenType[n];
        for (int i = 0; i < n; i++) {
            types[i] = typeIds == null ? TokenType.NORMAL : TokenType.fromId(typeIds[i]);
        }
        int bos = tokenId(gguf, BOS_KEY, defaultBos, n);
        int eos = tokenId(gguf, EOS_KEY, defaultEos, n);
        int unk = tokenId(gguf, UNK_KEY, defaultUnk, n);
        int[] extraEog = Arrays.stream(new int[] {tokenId(gguf, EOT_KEY, NONE, n), tokenId(gguf, EOM_KEY, NONE, n)})
                .filter(id -> id != NONE).toArray();
        return new Vocabulary(texts, scores, types, bos, eos, unk, extraEog);
    }

    private static int tokenId(GgufFile gguf, String key, int dflt, int size) {
        int id = gguf.findTokenId(key).orElse(dflt);
        return id >= 0 && id < size ? id : (dflt < size ? dflt : NONE);
    }

    int size() {
        return texts.length;
    }

    /** @throws IllegalArgumentException for an id outside the vocabulary */
    String text(int id) {
        checkId(id);
        return texts[id];
    }

    float score(int id) {
        return scores[id];
    }

    TokenType type(int id) {
        checkId(id);
        return types[id];
    }

    /** The id of the token spelled exactly {@code text}, or {@link #NONE}. */
    int id(String text) {
        Integer id = ids.get(text);
        return id == null ? NONE : id;
    }

    int bosId() {
        return bosId;
    }

    int eosId() {
        return eosId;
    }

    int unkId() {
        return unkId;
    }

    boolean isEndOfGeneration(int id) {
        return id >= 0 && id < endOfGeneration.length && endOfGeneration[id];
    }

    void checkId(int id) {
        if (id < 0 || id >= texts.length) {
            throw new IllegalArgumentException("token id " + id + " outside the vocabulary [0, " + texts.length + ")");
        }
    }

    /**
     * Splits {@code text} around literal occurrences of special tokens, as llama.cpp's
     * {@code tokenizer_st_partition}: special tokens are taken longest first, each splitting every
     * remaining text fragment at all its occurrences. USER_DEFINED tokens always split; CONTROL and
     * UNKNOWN ones only when {@code parseSpecial}. Per-token lstrip/rstrip attributes are not in GGUF
     * and are not applied.
     *
     * @return fragments in text order; empty for empty text
     */
    List<Fragment> split(String text, boolean parseSpecial) {
        List<Fragment> fragments = new ArrayList<>();
        if (text.isEmpty()) {
            return fragments;
        }
        fragments.add(new Fragment(NONE, 0, text.length()));
        for (int id : specialIds) {
            if (!parseSpecial && types[id] != TokenType.USER_DEFINED) {
                continue;
            }
            String s = texts[id];
            if (!text.contains(s)) {
                continue;
            }
            List<Fragment> next = new ArrayList<>(fragments.size() + 2);
            for (Fragment f : fragments) {
                if (!f.isText()) {
                    next.add(f);
                    continue;
                }
                int cur = f.start();
                for (int at = text.indexOf(s, cur); at >= 0 && at + s.length() <= f.end(); at = text.indexOf(s, cur)) {
                    if (at > cur) {
                        next.add(new Fragment(NONE, cur, at));
                    }
                    next.add(new Fragment(id, at, at + s.length()));
                    cur = at + s.length();
                }
                if (cur < f.end()) {
                    next.add(new Fragment(NONE, cur, f.end()));
                }
            }
            fragments = next;
        }
        return fragments;
    }
}
