package io.tandem.engine.model;

import io.tandem.kvcache.BlockTable;

/**
 * The tokens of one forward pass, flattened over sequences as vLLM's model runner does: sequence
 * {@code s} owns tokens {@code [seqStart[s], seqStart[s+1])}, at positions {@code positions[t]},
 * and reads/writes KV through {@code blockTables[s]}. A prefill chunk contributes many tokens of
 * one sequence, a decode step one token per sequence; both can share a batch.
 *
 * <p>Preallocated for {@code maxTokens} tokens and {@code maxSeqs} sequences and reused every step,
 * so the steady state allocates nothing. Owned by the engine thread.
 */
public final class ForwardBatch {
    final int[] tokens;
    final int[] positions;
    final int[] seqStart;
    final BlockTable[] blockTables;
    final boolean[] wantsLogits;
    int numTokens;
    int numSeqs;

    /**
     * @param maxTokens tokens per pass at most (the scheduler's token budget)
     * @param maxSeqs   sequences per pass at most
     */
    public ForwardBatch(int maxTokens, int maxSeqs) {
        tokens = new int[maxTokens];
        positions = new int[maxTokens];
        seqStart = new int[maxSeqs + 1];
        blockTables = new BlockTable[maxSeqs];
        wantsLogits = new boolean[maxSeqs];
    }

    /** Empties the batch. */
    public void clear() {
        numTokens = 0;
        numSeqs = 0;
    }

    /**
     * Adds {@code count} tokens of one sequence, {@code tokenIds[from..from+count)}, at positions
     * {@code startPosition, startPosition+1, …}.
     *
     * @param wantsLogits whether the caller samples after this sequence's last token (false for a
     *                    prefill chunk that does not finish the prompt)
     * @return the sequence's index in this batch (its row in the logits)
     * @throws IllegalStateException if the batch is full
     */
    public int addSequence(int[] tokenIds, int from, int count, int startPosition, BlockTable blockTable,
                           boolean wantsLogits) {
        if (numSeqs == blockTables.length || numTokens + count > tokens.length) {
            throw new IllegalStateException("forward batch is full: " + numSeqs + " seqs, " + numTokens
                    + " + " + count + " tokens of " + tokens.length);
        }
        System.arraycopy(tokenIds, from, tokens, numTokens, count);
        for (int i = 0; i < count; i++) {
            positions[numTokens + i] = startPosition + i;
        }
        seqStart[numSeqs] = numTokens;
        blockTables[numSeqs] = blockTable;
        this.wantsLogits[numSeqs] = wantsLogits;
        numTokens += count;
        numSeqs++;
        seqStart[numSeqs] = numTokens;
        return numSeqs - 1;
    }

    /** First token index of batch sequence {@code s}; {@code seqStart(numSeqs())} = {@link #numTokens()}. */
    public int seqStart(int s) {
        return seqStart[s];
    }

    public int numTokens() {
        return numTokens;
    }

    public int numSeqs() {
        return numSeqs;
    }

    /** Free token slots left. */
    public int remainingTokens() {
        return tokens.length - numTokens;
    }

    /** Whether another sequence fits. */
    public boolean hasRoomForSequence() {
        return numSeqs < blockTables.length;
    }

    public int maxTokens() {
        return tokens.length;
    }
}
