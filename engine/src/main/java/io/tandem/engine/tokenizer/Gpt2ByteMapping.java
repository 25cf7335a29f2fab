package io.tandem.engine.tokenizer;

import java.util.Arrays;

/**
 * GPT-2's reversible bytes ↔ unicode table ({@code bytes_to_unicode} in OpenAI's encoder.py, used
 * by every byte-level BPE vocabulary: GPT-2, Llama 3, Qwen2, SmolLM2). Printable bytes
 * {@code ! .. ~}, {@code ¡ .. ¬} and {@code ® .. ÿ} map to the same code point; the other 68 bytes
 * map, in byte order, to U+0100 onwards (so space 0x20 is {@code Ġ} U+0120 and newline 0x0A is
 * {@code Ċ} U+010A). Every mapped character is a single UTF-16 char.
 */
final class Gpt2ByteMapping {
    private static final char[] BYTE_TO_CHAR = new char[256];
    /** Indexed by char; -1 where the char is not the image of a byte. */
    private static final int[] CHAR_TO_BYTE = new int[0x200];

    static {
        Arrays.fill(CHAR_TO_BYTE, -1);
        int extra = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = printable ? (char) b : (char) (256 + extra++);
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = b;
        }
    }

    private Gpt2ByteMapping() {
    }

    /** The character byte {@code b} (0..255) is written as in a byte-level vocabulary. */
    static char toChar(int b) {
        return BYTE_TO_CHAR[b & 0xFF];
    }

    /** The byte {@code c} stands for, or -1 if {@code c} is not in the table. */
    static int toByte(char c) {
        return c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
    }

    /** Each byte of {@code utf8} as its table character. */
    static String encode(byte[] utf8) {
        char[] out = new char[utf8.length];
        for (int i = 0; i < utf8.length; i++) {
            out[i] = BYTE_TO_CHAR[utf8[i] & 0xFF];
        }
        return new String(out);
    }
}
