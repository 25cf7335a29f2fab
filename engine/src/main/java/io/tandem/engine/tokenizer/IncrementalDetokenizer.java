package io.tandem.engine.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Turns a stream of generated token ids into text as soon as it is complete, for streaming
 * responses. A character whose UTF-8 bytes are split over several tokens (byte-fallback tokens in
 * SPM, partial characters in byte-level BPE) is held back until its last byte arrives, so no
 * half-character is ever sent as U+FFFD. Text is {@link Tokenizer#decode raw}: nothing is stripped.
 *
 * <p>One instance per sequence, used by one thread. {@link #feed} allocates only the returned
 * String (none when nothing completes); the byte buffer is reused and grows only for a token longer
 * than any seen before.
 */
public final class IncrementalDetokenizer {
    private final Tokenizer tokenizer;
    private byte[] pending = new byte[64];
    private int pendingLength;

    public IncrementalDetokenizer(Tokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    /**
     * Adds one token.
     *
     * @return the text completed by this token: {@code ""} while a character is still incomplete
     * @throws IllegalArgumentException for an id outside the vocabulary
     */
    public String feed(int tokenId) {
        int n = tokenizer.tokenByteLength(tokenId);
        if (pendingLength + n > pending.length) {
            pending = Arrays.copyOf(pending, Math.max(pending.length * 2, pendingLength + n));
        }
        tokenizer.copyTokenBytes(tokenId, pending, pendingLength);
        pendingLength += n;
        int complete = completeLength(pending, pendingLength);
        if (complete == 0) {
            return "";
        }
        String text = new String(pending, 0, complete, StandardCharsets.UTF_8);
        System.arraycopy(pending, complete, pending, 0, pendingLength - complete);
        pendingLength -= complete;
        return text;
    }

    /**
     * Returns the held-back bytes of an unfinished character (each malformed sequence as U+FFFD)
     * and empties the buffer; {@code ""} when nothing is held.
     */
    public String flush() {
        String text = pendingLength == 0 ? "" : new String(pending, 0, pendingLength, StandardCharsets.UTF_8);
        pendingLength = 0;
        return text;
    }

    /** Bytes held back, waiting for the rest of a character. */
    public int pendingBytes() {
        return pendingLength;
    }

    /**
     * Length of the longest prefix of {@code b[0, len)} that does not end inside a UTF-8 sequence
     * that could still be completed: a trailing lead byte (2-, 3- or 4-byte form) followed by fewer
     * continuation bytes than it announces is held back; anything malformed is let through, to be
     * decoded as U+FFFD.
     */
    static int completeLength(byte[] b, int len) {
        for (int back = 1; back <= 4 && back <= len; back++) {
            int x = b[len - back] & 0xFF;
            if ((x & 0xC0) == 0x80) {
                continue; // continuation byte: keep looking for its lead byte
            }
            int need = x >= 0xC2 && x <= 0xDF ? 2 : x >= 0xE0 && x <= 0xEF ? 3 : x >= 0xF0 && x <= 0xF4 ? 4 : 1;
            return back < need ? len - back : len;
        }
        return len;
    }
}
