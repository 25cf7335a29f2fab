package io.tandem.bench;

import java.util.random.RandomGenerator;

/**
 * The token ids synthetic prompts draw from, uniformly: {@code [lo, hi)}. The default
 * {@code 259:500} holds ordinary (non-special, non-byte) pieces of both stories260K's 512-token
 * SentencePiece vocabulary (ids 0–2 are unk/bos/eos, 3–258 the byte tokens) and any Llama-3-size
 * vocabulary, so a prompt never contains BOS, EOS or a lone byte.
 *
 * @param lo first id, inclusive, {@code >= 0}
 * @param hi last id, exclusive, {@code > lo}
 */
public record TokenIdRange(int lo, int hi) {

    public static final TokenIdRange DEFAULT = new TokenIdRange(259, 500);

    public TokenIdRange {
        if (lo < 0 || hi <= lo) {
            throw new IllegalArgumentException("token id range must satisfy 0 <= LO < HI, got " + lo + ":" + hi);
        }
    }

    /**
     * Parses {@code LO:HI}.
     *
     * @throws IllegalArgumentException when the text is not two integers {@code 0 <= LO < HI}
     */
    public static TokenIdRange parse(String text) {
        int colon = text.indexOf(':');
        if (colon < 0) {
            throw new IllegalArgumentException("token id range must be LO:HI, got '" + text + "'");
        }
        try {
            return new TokenIdRange(Integer.parseInt(text.substring(0, colon).strip()),
                    Integer.parseInt(text.substring(colon + 1).strip()));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("token id range must be LO:HI with integers, got '" + text + "'", e);
        }
    }

    /** One id drawn uniformly from the range. */
    public int next(RandomGenerator rng) {
        return rng.nextInt(lo, hi);
    }

    /** {@code count} ids drawn uniformly from the range. */
    public int[] next(RandomGenerator rng, int count) {
        int[] ids = new int[count];
        for (int i = 0; i < count; i++) {
            ids[i] = rng.nextInt(lo, hi);
        }
        return ids;
    }

    @Override
    public String toString() {
        return lo + ":" + hi;
    }
}
