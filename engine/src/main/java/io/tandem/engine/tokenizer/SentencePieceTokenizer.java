package io.tandem.engine.tokenizer;

import io.tandem.engine.gguf.GgufFile;
import java.nio.charset.StandardCharsets;
import java.util.Comparator;
import java.util.PriorityQueue;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * SentencePiece-style BPE over token scores (GGUF {@code tokenizer.ggml.model = "llama"}: Llama 2,
 * TinyStories, Mistral), reproducing llama.cpp's {@code llm_tokenizer_spm}:
 * <ol>
 *   <li>split the text around special tokens ({@link Vocabulary#split});</li>
 *   <li>for each text fragment that starts the text or follows a special token, prepend one space
 *       when {@code tokenizer.ggml.add_space_prefix} (default true) — the "dummy prefix";</li>
 *   <li>replace every space with {@code ▁} (U+2581) and split into code points;</li>
 *   <li>repeatedly merge the adjacent pair whose concatenation is a vocabulary token with the highest
 *       score (ties: leftmost), using a priority queue of bigrams: O(n log n);</li>
 *   <li>emit each final piece's id; a piece that is not a token (a lone character missing from the
 *       vocabulary) becomes its UTF-8 bytes as {@code <0xNN>} byte tokens (or the single-character
 *       token, or UNK when neither exists).</li>
 * </ol>
 */
public final class SentencePieceTokenizer extends VocabularyTokenizer {
    /** The {@code tokenizer.ggml.model} value. */
    public static final String MODEL = "llama";
    static final String ADD_SPACE_PREFIX_KEY = "tokenizer.ggml.add_space_prefix";
    private static final char SPACE_MARK = '\u2581';
    private static final Pattern BYTE_TOKEN = Pattern.compile("<0x([0-9A-Fa-f]{2})>");
    /** Highest score first; equal scores: leftmost first (llama.cpp's {@code llm_bigram_spm::comparator}). */
    private static final Comparator<Bigram> BIGRAM_ORDER = (a, b) -> {
        if (a.score != b.score) {
            return a.score > b.score ? -1 : 1;
        }
        return Integer.compare(a.left, b.left);
    };

    private record Bigram(float score, int left, int right, int size) {}

    private final boolean addSpacePrefix;
    private final int[] byteTokens = new int[256];

    SentencePieceTokenizer(Vocabulary vocab, boolean addBos, boolean addSpacePrefix) {
        super(vocab, pieces(vocab), addBos);
        this.addSpacePrefix = addSpacePrefix;
        for (int b = 0; b < 256; b++) {
            int id = vocab.id(String.format("<0x%02X>", b));
            if (id == Vocabulary.NONE && b < 0x80) {
                id = vocab.id(String.valueOf((char) b));
            }
            byteTokens[b] = id == Vocabulary.NONE ? vocab.unkId() : id;
        }
    }

    /**
     * Reads the vocabulary with llama.cpp's SPM defaults: BOS 1, EOS 2, UNK 0,
     * {@code add_bos_token} true, {@code add_space_prefix} true.
     *
     * @throws IllegalArgumentException naming the key if the tokenizer metadata is missing or inconsistent
     */
    public static SentencePieceTokenizer fromGguf(GgufFile gguf) {
        Vocabulary vocab = Vocabulary.fromGguf(gguf, 1, 2, 0);
        return new SentencePieceTokenizer(vocab, gguf.getBool(Vocabulary.ADD_BOS_KEY, true),
                gguf.getBool(ADD_SPACE_PREFIX_KEY, true));
    }

    /** Whether a space is prepended to text at the start and after special tokens. */
    @Override
    public boolean addSpacePrefix() {
        return addSpacePrefix;
    }

    private static byte[][] pieces(Vocabulary vocab) {
        byte[][] pieces = new byte[vocab.size()][];
        for (int id = 0; id < vocab.size(); id++) {
            String text = vocab.text(id);
            pieces[id] = switch (vocab.type(id)) {
                case NORMAL -> text.replace(SPACE_MARK, ' ').getBytes(StandardCharsets.UTF_8);
                case USER_DEFINED -> text.getBytes(StandardCharsets.UTF_8);
                case BYTE -> {
                    Matcher m = BYTE_TOKEN.matcher(text);
                    yield m.matches() ? new byte[] {(byte) Integer.parseInt(m.group(1), 16)}
                            : text.getBytes(StandardCharsets.UTF_8);
                }
                case CONTROL, UNKNOWN, UNUSED, UNDEFINED -> null;
            };
        }
        return pieces;
    }

    @Override
    public int[] encode(String text, boolean addBos, boolean parseSpecial) {
        TokenIdList out = new TokenIdList(text.length() / 2 + 2);
        if (addBos) {
            appendBos(out);
        }
        boolean afterSpecial = true;
        for (Vocabulary.Fragment f : vocab.split(text, parseSpecial)) {
            if (f.isText()) {
                String fragment = text.substring(f.start(), f.end());
                String prefixed = addSpacePrefix && afterSpecial ? " " + fragment : fragment;
                encodeText(prefixed.replace(' ', SPACE_MARK), out);
                afterSpecial = false;
            } else {
                out.add(f.tokenId());
                afterSpecial = true;
            }
        }
        return out.toArray();
    }

    /** SPM merging of one escaped text fragment ({@code llm_tokenizer_spm_session::tokenize}). */
    private void encodeText(String s, TokenIdList out) {
        int n = s.length();
        if (n == 0) {
            return;
        }
        // Symbols are code points, kept as a doubly linked list; a merge grows the left symbol and
        // empties the right one, so every live symbol stays a contiguous range of s.
        int[] start = new int[n];
        int[] len = new int[n];
        int[] prev = new int[n];
        int[] next = new int[n];
        int count = 0;
        for (int i = 0; i < n; count++) {
            int l = Character.charCount(s.codePointAt(i));
            start[count] = i;
            len[count] = l;
            prev[count] = count - 1;
            next[count] = i + l == n ? -1 : count + 1;
            i += l;
        }
        PriorityQueue<Bigram> queue = new PriorityQueue<>(Math.max(1, count), BIGRAM_ORDER);
        for (int i = 1; i < count; i++) {
            addBigram(s, i - 1, i, start, len, queue);
        }
        while (!queue.isEmpty()) {
            Bigram b = queue.poll();
            // Stale if either side was merged away or grew since the bigram was queued.
            if (len[b.left] == 0 || len[b.right] == 0 || len[b.left] + len[b.right] != b.size) {
                continue;
            }
            len[b.left] += len[b.right];
            len[b.right] = 0;
            next[b.left] = next[b.right];
            if (next[b.right] >= 0) {
                prev[next[b.right]] = b.left;
            }
            addBigram(s, prev[b.left], b.left, start, len, queue);
            addBigram(s, b.left, next[b.left], start, len, queue);
        }
        for (int i = 0; i != -1; i = next[i]) {
            String piece = s.substring(start[i], start[i] + len[i]);
            int id = vocab.id(piece);
            if (id != Vocabulary.NONE) {
                out.add(id);
            } else {
                for (byte b : piece.getBytes(StandardCharsets.UTF_8)) {
                    int byteId = byteTokens[b & 0xFF];
                    if (byteId == Vocabulary.NONE) {
                        throw new IllegalStateException("no token for byte 0x" + Integer.toHexString(b & 0xFF)
                                + " and no unknown token in the vocabulary");
                    }
                    out.add(byteId);
                }
            }
        }
    }

    private void addBigram(String s, int left, int right, int[] start, int[] len, PriorityQueue<Bigram> queue) {
        if (left == -1 || right == -1) {
            return;
        }
        int size = len[left] + len[right];
        int id = vocab.id(s.substring(start[left], start[left] + size));
        if (id != Vocabulary.NONE) {
            queue.add(new Bigram(vocab.score(id), left, right, size));
        }
    }

    @Override
    public String decodeFromStart(int[] ids) {
        int n = 0;
        for (int id : ids) {
            n += tokenByteLength(id);
        }
        byte[] bytes = new byte[n];
        int at = 0;
        boolean stripSpace = addSpacePrefix;
        for (int id : ids) {
            byte[] piece = piece(id);
            if (vocab.type(id).isSpecial()) {
                System.arraycopy(piece, 0, bytes, at, piece.length);
                at += piece.length;
                stripSpace = addSpacePrefix;
                continue;
            }
            int skip = stripSpace && piece.length > 0 && piece[0] == ' ' ? 1 : 0;
            System.arraycopy(piece, skip, bytes, at, piece.length - skip);
            at += piece.length - skip;
            stripSpace = false;
        }
        return new String(bytes, 0, at, StandardCharsets.UTF_8);
    }
}
