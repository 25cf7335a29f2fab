package io.tandem.engine.tokenizer;

import io.tandem.engine.gguf.GgufFile;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Map;
import java.util.PriorityQueue;

/**
 * Byte-level BPE (GGUF {@code tokenizer.ggml.model = "gpt2"}: Llama 3, Qwen2, SmolLM2), reproducing
 * llama.cpp's {@code llm_tokenizer_bpe_session}:
 * <ol>
 *   <li>split the text around special tokens ({@link Vocabulary#split});</li>
 *   <li>split each text fragment into words with the {@link BpePreTokenizer} that
 *       {@code tokenizer.ggml.pre} names;</li>
 *   <li>write each word's UTF-8 bytes with the {@link Gpt2ByteMapping} characters; with the Llama-3
 *       pre-tokenizer a word that is itself a token is emitted as is ({@code ignore_merges});</li>
 *   <li>repeatedly merge the adjacent pair with the lowest rank in {@code tokenizer.ggml.merges}
 *       (lines {@code "left right"}, rank = line index; ties: leftmost), with a priority queue;</li>
 *   <li>emit each final piece's id; a piece that is not a token (only with an inconsistent
 *       vocabulary) falls back to its single characters' tokens, or UNK, or is dropped.</li>
 * </ol>
 * No dummy prefix, no BOS unless asked. Decoding maps characters back to bytes; a character outside
 * the byte table is kept as its own UTF-8 (llama.cpp writes {@code [UNK_BYTE_0x..]} instead).
 */
public final class Gpt2BpeTokenizer extends VocabularyTokenizer {
    /** The {@code tokenizer.ggml.model} value. */
    public static final String MODEL = "gpt2";
    static final String MERGES_KEY = "tokenizer.ggml.merges";
    static final String PRE_KEY = "tokenizer.ggml.pre";
    /** Lowest rank first; equal ranks: leftmost first (llama.cpp's {@code llm_bigram_bpe::comparator}). */
    private static final Comparator<Bigram> BIGRAM_ORDER =
            Comparator.comparingInt(Bigram::rank).thenComparingInt(Bigram::left);

    private record Bigram(int rank, int left, int right, int size) {}

    private record MergePair(String left, String right) {}

    private final Map<MergePair, Integer> mergeRanks;
    private final BpePreTokenizer preTokenizer;

    Gpt2BpeTokenizer(Vocabulary vocab, String[] merges, BpePreTokenizer preTokenizer, boolean addBos) {
        super(vocab, pieces(vocab), addBos);
        this.preTokenizer = preTokenizer;
        this.mergeRanks = new HashMap<>(merges.length * 2);
        for (int rank = 0; rank < merges.length; rank++) {
            // Split at the first space after the first character, as llama.cpp does.
            int space = merges[rank].indexOf(' ', 1);
            if (space < 0) {
                throw new IllegalArgumentException("merge #" + rank + " '" + merges[rank] + "' in " + MERGES_KEY
                        + " is not 'left right'");
            }
            mergeRanks.putIfAbsent(new MergePair(merges[rank].substring(0, space), merges[rank].substring(space + 1)), rank);
        }
    }

    /**
     * Reads the vocabulary, {@code tokenizer.ggml.merges} and {@code tokenizer.ggml.pre}. BOS/EOS/UNK
     * default to none when absent (llama.cpp defaults to GPT-2's id 11); {@code add_bos_token}
     * defaults to true only for the Llama-3 pre-tokenizer, as in llama.cpp.
     *
     * @throws IllegalArgumentException naming the key if the merges are missing or the pre-tokenizer is unknown
     */
    public static Gpt2BpeTokenizer fromGguf(GgufFile gguf) {
        Vocabulary vocab = Vocabulary.fromGguf(gguf, Vocabulary.NONE, Vocabulary.NONE, Vocabulary.NONE);
        BpePreTokenizer pre = BpePreTokenizer.forName(gguf.findString(PRE_KEY).orElse(null));
        boolean addBos = gguf.getBool(Vocabulary.ADD_BOS_KEY, pre.addBosByDefault());
        return new Gpt2BpeTokenizer(vocab, gguf.getStringArray(MERGES_KEY), pre, addBos);
    }

    private static byte[][] pieces(Vocabulary vocab) {
        byte[][] pieces = new byte[vocab.size()][];
        for (int id = 0; id < vocab.size(); id++) {
            String text = vocab.text(id);
            pieces[id] = switch (vocab.type(id)) {
                case NORMAL -> byteLevelDecode(text);
                case USER_DEFINED -> text.getBytes(StandardCharsets.UTF_8);
                case CONTROL, UNKNOWN, UNUSED, UNDEFINED, BYTE -> null;
            };
        }
        return pieces;
    }

    private static byte[] byteLevelDecode(String text) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(text.length());
        for (int i = 0; i < text.length(); ) {
            int cp = text.codePointAt(i);
            int b = cp < Character.MIN_SUPPLEMENTARY_CODE_POINT ? Gpt2ByteMapping.toByte((char) cp) : -1;
            if (b >= 0) {
                out.write(b);
            } else {
                out.writeBytes(Character.toString(cp).getBytes(StandardCharsets.UTF_8));
            }
            i += Character.charCount(cp);
        }
        return out.toByteArray();
    }

    @Override
    public int[] encode(String text, boolean addBos, boolean parseSpecial) {
        TokenIdList out = new TokenIdList(text.length() / 3 + 2);
        if (addBos) {
            appendBos(out);
        }
        for (Vocabulary.Fragment f : vocab.split(text, parseSpecial)) {
            if (!f.isText()) {
                out.add(f.tokenId());
                continue;
            }
            for (String word : preTokenizer.split(text.substring(f.start(), f.end()))) {
                encodeWord(Gpt2ByteMapping.encode(word.getBytes(StandardCharsets.UTF_8)), out);
            }
        }
        return out.toArray();
    }

    /** BPE merging of one byte-level word; every char of {@code w} is one symbol to start with. */
    private void encodeWord(String w, TokenIdList out) {
        int n = w.length();
        if (n == 0) {
            return;
        }
        if (preTokenizer.ignoreMerges()) {
            int id = vocab.id(w);
            if (id != Vocabulary.NONE) {
                out.add(id);
                return;
            }
        }
        int[] len = new int[n];
        int[] prev = new int[n];
        int[] next = new int[n];
        for (int i = 0; i < n; i++) {
            len[i] = 1;
            prev[i] = i - 1;
            next[i] = i + 1 == n ? -1 : i + 1;
        }
        // Symbol i always starts at char i: merges grow the left symbol and empty the right one.
        PriorityQueue<Bigram> queue = new PriorityQueue<>(n, BIGRAM_ORDER);
        for (int i = 1; i < n; i++) {
            addBigram(w, i - 1, i, len, queue);
        }
        while (!queue.isEmpty()) {
            Bigram b = queue.poll();
            if (len[b.left] == 0 || len[b.right] == 0 || len[b.left] + len[b.right] != b.size) {
                continue;
            }
            len[b.left] += len[b.right];
            len[b.right] = 0;
            next[b.left] = next[b.right];
            if (next[b.right] >= 0) {
                prev[next[b.right]] = b.left;
            }
            addBigram(w, prev[b.left], b.left, len, queue);
            addBigram(w, b.left, next[b.left], len, queue);
        }
        for (int i = 0; i != -1; i = next[i]) {
            String piece = w.substring(i, i + len[i]);
            int id = vocab.id(piece);
            if (id != Vocabulary.NONE) {
                out.add(id);
                continue;
            }
            for (int k = 0; k < piece.length(); k++) {
                int charId = vocab.id(String.valueOf(piece.charAt(k)));
                int fallback = charId != Vocabulary.NONE ? charId : vocab.unkId();
                if (fallback != Vocabulary.NONE) {
                    out.add(fallback);
                }
            }
        }
    }

    private void addBigram(String w, int left, int right, int[] len, PriorityQueue<Bigram> queue) {
        if (left == -1 || right == -1) {
            return;
        }
        Integer rank = mergeRanks.get(new MergePair(w.substring(left, left + len[left]), w.substring(right, right + len[right])));
        if (rank != null) {
            queue.add(new Bigram(rank, left, right, len[left] + len[right]));
        }
    }

    @Override
    public String decodeFromStart(int[] ids) {
        return decode(ids);
    }
}
