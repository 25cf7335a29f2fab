package io.tandem.engine.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Splits text into the words that byte-level BPE merges within, chosen by GGUF
 * {@code tokenizer.ggml.pre}. The regexes are llama.cpp's ({@code llm_tokenizer_bpe}); they are
 * applied in sequence, each splitting every piece the previous one produced, and text between
 * matches stays a piece of its own ({@code unicode_regex_split}). Each regex sees only its piece,
 * so a lookahead cannot look past a piece's end.
 *
 * <p>Java's regex engine runs them unchanged: {@code \p{L}}, {@code \p{N}}, {@code \p{P}} are the
 * Unicode general categories, and {@link Pattern#UNICODE_CHARACTER_CLASS} makes {@code \s} the
 * Unicode White_Space set llama.cpp uses. The Llama-3 regex's {@code (?i:'s|...)} is written with
 * explicit case classes as llama.cpp does.
 */
enum BpePreTokenizer {
    /** Llama 3 ({@code llama3}, {@code llama-v3}, {@code llama-bpe}, {@code falcon3}): digits in runs of up to 3. */
    LLAMA3(true, true, Regex.LLAMA3),
    /** Qwen2 ({@code qwen2}, {@code megrez}, {@code stablelm2}): Llama-3 regex with single digits. */
    QWEN2(false, false, Regex.QWEN2),
    /** SmolLM / StarCoder family ({@code smollm}, {@code starcoder}, ...): single digits, then GPT-2. */
    STARCODER(false, false, "\\p{N}", Regex.GPT2),
    /** GPT-2 ({@code gpt-2}, {@code phi-2}, {@code mpt}, {@code olmo}, ...). */
    GPT2(false, false, Regex.GPT2),
    /** {@code default} or no {@code tokenizer.ggml.pre}: llama.cpp's fallback chain (quality degraded). */
    DEFAULT(false, false, "[\\p{P}\\$\\+<=>\\^~\\|]+", Regex.GPT2, "\\p{N}+", "[0-9][0-9][0-9]");

    private static final class Regex {
        static final String LLAMA3 = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
                + "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
        static final String QWEN2 = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
                + "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
        static final String GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
    }

    private final boolean ignoreMerges;
    private final boolean addBosByDefault;
    private final Pattern[] patterns;

    BpePreTokenizer(boolean ignoreMerges, boolean addBosByDefault, String... regexes) {
        this.ignoreMerges = ignoreMerges;
        this.addBosByDefault = addBosByDefault;
        this.patterns = new Pattern[regexes.length];
        for (int i = 0; i < regexes.length; i++) {
            patterns[i] = Pattern.compile(regexes[i], Pattern.UNICODE_CHARACTER_CLASS);
        }
    }

    /**
     * The pre-tokenizer for a {@code tokenizer.ggml.pre} value ({@code null} or empty: {@link #DEFAULT}).
     *
     * @throws IllegalArgumentException naming the value if it is not supported
     */
    static BpePreTokenizer forName(String pre) {
        if (pre == null || pre.isEmpty()) {
            return DEFAULT;
        }
        return switch (pre) {
            case "default" -> DEFAULT;
            case "llama3", "llama-v3", "llama-bpe", "falcon3" -> LLAMA3;
            case "qwen2", "megrez", "stablelm2" -> QWEN2;
            case "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b" -> STARCODER;
            case "gpt-2", "phi-2", "roberta-bpe", "mpt", "olmo", "jais", "gigachat", "jina-es", "jina-de",
                 "jina-v1-en", "jina-v2-es", "jina-v2-de", "jina-v2-code" -> GPT2;
            default -> throw new IllegalArgumentException("unsupported pre-tokenizer '" + pre
                    + "' in tokenizer.ggml.pre (supported: llama3/llama-bpe, qwen2, smollm/starcoder, gpt-2, default)");
        };
    }

    /** Whether a word that is itself a vocabulary token is emitted without merging (HF {@code ignore_merges}). */
    boolean ignoreMerges() {
        return ignoreMerges;
    }

    /** llama.cpp's {@code add_bos} default for this pre-tokenizer when the GGUF does not say. */
    boolean addBosByDefault() {
        return addBosByDefault;
    }

    /** The words of {@code text}, in order; their concatenation is {@code text}. */
    List<String> split(String text) {
        List<int[]> pieces = new ArrayList<>();
        pieces.add(new int[] {0, text.length()});
        for (Pattern p : patterns) {
            List<int[]> next = new ArrayList<>(pieces.size() * 2);
            Matcher m = p.matcher(text);
            for (int[] piece : pieces) {
                int cur = piece[0];
                m.region(piece[0], piece[1]);
                while (m.find()) {
                    if (m.end() == m.start()) {
                        continue;
                    }
                    if (m.start() > cur) {
                        next.add(new int[] {cur, m.start()});
                    }
                    next.add(new int[] {m.start(), m.end()});
                    cur = m.end();
                }
                if (cur < piece[1]) {
                    next.add(new int[] {cur, piece[1]});
                }
            }
            pieces = next;
        }
        List<String> words = new ArrayList<>(pieces.size());
        for (int[] piece : pieces) {
            words.add(text.substring(piece[0], piece[1]));
        }
        return words;
    }
}
