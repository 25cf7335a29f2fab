package io.tandem.engine.tokenizer;

import io.tandem.engine.gguf.GgufFile;
import java.nio.charset.StandardCharsets;

/**
 * Text ↔ token ids for one model, built from the tokenizer embedded in its GGUF file and
 * matching llama.cpp's {@code llama_tokenize} / {@code llama_token_to_piece} (llama-vocab.cpp).
 *
 * <p>Implementations are immutable and safe to share between threads.
 */
public interface Tokenizer {

    /**
     * Tokenizes {@code text}.
     *
     * @param text         any string (unpaired surrogates become {@code ?} in UTF-8)
     * @param addBos       prepend {@link #bosId()}; callers usually pass {@link #addBos()}
     * @param parseSpecial whether CONTROL/UNKNOWN tokens spelled literally in the text (e.g.
     *                     {@code <|im_start|>}, {@code </s>}) become their ids, as llama.cpp's
     *                     {@code parse_special}; USER_DEFINED tokens are always matched
     * @return the token ids; EOS is never appended
     * @throws IllegalStateException if {@code addBos} but the vocabulary has no BOS token
     */
    int[] encode(String text, boolean addBos, boolean parseSpecial);

    /**
     * The raw bytes token {@code id} stands for: SPM {@code ▁} as a space and {@code <0xNN>} as the
     * byte NN, GPT-2 byte-level characters mapped back to bytes, USER_DEFINED tokens as their text,
     * and CONTROL / UNKNOWN / UNUSED tokens (BOS, EOS, {@code <unk>}) as no bytes. A fresh copy.
     *
     * @throws IllegalArgumentException for an id outside {@code [0, vocabSize())}
     */
    byte[] tokenBytes(int id);

    /** Length of {@link #tokenBytes(int)} without copying. */
    int tokenByteLength(int id);

    /**
     * Copies {@link #tokenBytes(int)} into {@code dst} at {@code offset} without allocating.
     *
     * @throws IndexOutOfBoundsException if it does not fit
     */
    void copyTokenBytes(int id, byte[] dst, int offset);

    /**
     * The concatenated {@link #tokenBytes} of {@code ids} as UTF-8 (malformed sequences become
     * U+FFFD). Nothing is stripped, so {@code decode(prompt) + decode(continuation)} is the text of
     * the whole sequence; note that for SPM models {@code decode(encode(x, ..))} is {@code " " + x}
     * because of the dummy prefix: use {@link #decodeFromStart} to invert {@code encode}.
     */
    default String decode(int[] ids) {
        int n = 0;
        for (int id : ids) {
            n += tokenByteLength(id);
        }
        byte[] bytes = new byte[n];
        int at = 0;
        for (int id : ids) {
            copyTokenBytes(id, bytes, at);
            at += tokenByteLength(id);
        }
        return new String(bytes, StandardCharsets.UTF_8);
    }

    /**
     * Decodes a sequence that starts at the beginning of a text, inverting {@link #encode}: like
     * {@link #decode} but, for SPM models that add a dummy prefix, the one space that {@code encode}
     * put before the first text piece and before the text after each special token is removed
     * (llama.cpp's {@code llama_detokenize} removes only the first). GPT-2 BPE: same as {@link #decode};
     * HF's {@code clean_up_tokenization_spaces} is not applied.
     */
    String decodeFromStart(int[] ids);

    /**
     * Whether {@link #encode} prepends a space to the text (the SPM "dummy prefix",
     * {@code tokenizer.ggml.add_space_prefix}), which {@link #decodeFromStart} removes again.
     * {@code false} for GPT-2 BPE.
     */
    default boolean addSpacePrefix() {
        return false;
    }

    /** Number of tokens in the vocabulary; ids are {@code [0, vocabSize())}. */
    int vocabSize();

    /** Beginning-of-sequence id ({@code tokenizer.ggml.bos_token_id}), or {@code -1} if none. */
    int bosId();

    /** End-of-sequence id ({@code tokenizer.ggml.eos_token_id}), or {@code -1} if none. */
    int eosId();

    /**
     * Whether prompts for this model start with BOS: {@code tokenizer.ggml.add_bos_token} if present,
     * else llama.cpp's default for the tokenizer (true for SPM {@code llama} and for GPT-2 BPE with the
     * Llama-3 pre-tokenizer, false for other GPT-2 BPE).
     */
    boolean addBos();

    /** Whether {@code id} is a CONTROL token (BOS, EOS, chat markers such as {@code <|im_start|>}). */
    boolean isControl(int id);

    /**
     * Whether generating {@code id} ends the sequence: EOS, {@code eot}/{@code eom} ids, and tokens
     * spelled {@code <|eot_id|>}, {@code <|im_end|>}, {@code <|end|>}, {@code <end_of_turn>},
     * {@code <|endoftext|>}, {@code <|eom_id|>}, {@code <EOT>} (llama.cpp's end-of-generation set).
     */
    boolean isEndOfGeneration(int id);

    /** The token's string as stored in the vocabulary (e.g. {@code ▁Once}, {@code <0x0A>}, {@code Ġworld}). */
    String tokenText(int id);

    /**
     * Builds the tokenizer {@code tokenizer.ggml.model} names: {@code llama} →
     * {@link SentencePieceTokenizer}, {@code gpt2} → {@link Gpt2BpeTokenizer}.
     *
     * @throws IllegalArgumentException naming the model (or the missing key / unknown pre-tokenizer)
     */
    static Tokenizer fromGguf(GgufFile gguf) {
        String model = gguf.findString(Vocabulary.MODEL_KEY).orElseThrow(() -> new IllegalArgumentException(
                "GGUF file " + gguf.path() + " has no tokenizer: metadata key '" + Vocabulary.MODEL_KEY + "' is missing"));
        return switch (model) {
            case SentencePieceTokenizer.MODEL -> SentencePieceTokenizer.fromGguf(gguf);
            case Gpt2BpeTokenizer.MODEL -> Gpt2BpeTokenizer.fromGguf(gguf);
            default -> throw new IllegalArgumentException("unsupported tokenizer model '" + model + "' in '"
                    + Vocabulary.MODEL_KEY + "' of " + gguf.path() + " (supported: llama, gpt2)");
        };
    }
}
