package io.tandem.engine.tokenizer;

import java.util.Arrays;

/** A growable list of token ids without boxing, for building {@link Tokenizer#encode} results. */
final class TokenIdList {
    private int[] ids;
    private int size;

    TokenIdList(int initialCapacity) {
        ids = new int[Math.max(8, initialCapacity)];
    }

    void add(int id) {
        if (size == ids.length) {
            ids = Arrays.copyOf(ids, ids.length * 2);
        }
        ids[size++] = id;
    }

    int size() {
        return size;
    }

    int[] toArray() {
        return Arrays.copyOf(ids, size);
    }
}
