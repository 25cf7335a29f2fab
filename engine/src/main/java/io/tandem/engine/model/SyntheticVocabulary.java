package io.tandem.engine.model;

import io.tandem.engine.gguf.GgufWriter;

/**
 * A SentencePiece-style ({@code tokenizer.ggml.model = llama}) vocabulary of any size for dummy
 * models: {@code <unk>}=0, {@code <s>}=1, {@code </s>}=2, byte tokens {@code <0x00>}…{@code <0xFF>}
 * (ids 3–258, GGUF token type 6), then {@code ▁} and the letters a–z, then word-like pieces
 * {@code ▁a, ▁b, …, ▁aa, …} whose every prefix is also a piece, so merges reach them. Scores fall
 * with the id, so earlier pieces win merges.
 */
final class SyntheticVocabulary {
    private static final int TYPE_NORMAL = 1;
    private static final int TYPE_UNKNOWN = 2;
    private static final int TYPE_CONTROL = 3;
    private static final int TYPE_BYTE = 6;

    private SyntheticVocabulary() {}

    static void put(GgufWriter w, int size) {
        String[] tokens = new String[size];
        float[] scores = new float[size];
        int[] types = new int[size];
        tokens[0] = "<unk>";
        tokens[1] = "<s>";
        tokens[2] = "</s>";
        types[0] = TYPE_UNKNOWN;
        types[1] = TYPE_CONTROL;
        types[2] = TYPE_CONTROL;
        for (int b = 0; b < 256; b++) {
            tokens[3 + b] = String.format("<0x%02X>", b);
            types[3 + b] = TYPE_BYTE;
        }
        int id = 259;
        if (id < size) {
            tokens[id++] = "\u2581";
        }
        for (char c = 'a'; c <= 'z' && id < size; c++) {
            tokens[id++] = String.valueOf(c);
        }
        for (long n = 1; id < size; n++) {
            tokens[id++] = "\u2581" + word(n);
        }
        for (int i = 259; i < size; i++) {
            types[i] = TYPE_NORMAL;
            scores[i] = -(i - 259);
        }
        w.putString("tokenizer.ggml.model", "llama");
        w.putStringArray("tokenizer.ggml.tokens", tokens);
        w.putFloat32Array("tokenizer.ggml.scores", scores);
        w.putInt32Array("tokenizer.ggml.token_type", types);
        w.putUint32("tokenizer.ggml.unknown_token_id", 0);
        w.putUint32("tokenizer.ggml.bos_token_id", 1);
        w.putUint32("tokenizer.ggml.eos_token_id", 2);
        w.putBool("tokenizer.ggml.add_bos_token", true);
    }

    /** Bijective base-26 numeral: 1 → a, 26 → z, 27 → aa. */
    private static String word(long n) {
        StringBuilder sb = new StringBuilder();
        while (n > 0) {
            n--;
            sb.append((char) ('a' + n % 26));
            n /= 26;
        }
        return sb.reverse().toString();
    }
}
