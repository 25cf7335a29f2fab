package io.tandem.control;

import io.tandem.engine.InvalidArgumentException;
import io.tandem.engine.model.ModelConfig;
import java.util.function.IntUnaryOperator;

/** Checks token ids that arrive from another process before any engine indexes a table with them. */
final class PromptTokens {
    private PromptTokens() {}

    /**
     * Copies a repeated token field out of a message (read by index, never boxed).
     *
     * @param count how many ids the field has
     * @param idAt  the id at an index
     * @return the ids, each in {@code [0, vocab)}, at least one and fewer than the context length
     * @throws InvalidArgumentException naming {@code field} and the offending index or length
     */
    static int[] check(int count, IntUnaryOperator idAt, String field, ModelConfig model) {
        if (count == 0) {
            throw new InvalidArgumentException(field, field + " must contain at least one token");
        }
        if (count >= model.contextLength()) {
            throw new InvalidArgumentException(field, field + " has " + count + " tokens; the context length is "
                    + model.contextLength());
        }
        int[] out = new int[count];
        for (int i = 0; i < count; i++) {
            out[i] = checkToken(idAt.applyAsInt(i), field + "[" + i + "]", model);
        }
        return out;
    }

    /** @throws InvalidArgumentException naming {@code field} when {@code id} is outside the vocabulary */
    static int checkToken(int id, String field, ModelConfig model) {
        if (id < 0 || id >= model.vocabSize()) {
            throw new InvalidArgumentException(field, field + " = " + id + " is outside the vocabulary [0, "
                    + model.vocabSize() + ")");
        }
        return id;
    }
}
