package io.tandem.engine;

import io.tandem.engine.sampling.SamplingParams;
import io.tandem.kvcache.BlockTable;
import java.util.Arrays;

/**
 * One request's state inside an engine (vLLM's {@code Request}): its tokens (prompt, then
 * generated), how many of them have K/V in the cache, and its block table. Owned by the engine
 * thread.
 */
public final class Sequence {
    private final String requestId;
    private final SamplingParams sampling;
    private final long seed;
    private final int numPromptTokens;
    private final BlockTable blockTable;
    private int[] tokens;
    private int numTokens;
    private int numComputedTokens;
    private SequenceStatus status = SequenceStatus.WAITING;
    private long[] blockHashes;
    private int numHashedBlocks;
    private int numCachedBlocks;

    /**
     * @param tokenIds   prompt (and, on a decode worker, the first generated token)
     * @param maxTokens  room to reserve: the most tokens this sequence can reach
     */
    public Sequence(String requestId, int[] tokenIds, int numPromptTokens, SamplingParams sampling, long seed,
                    int maxTokens, int blockSize) {
        this.requestId = requestId;
        this.sampling = sampling;
        this.seed = seed;
        this.numPromptTokens = numPromptTokens;
        this.tokens = Arrays.copyOf(tokenIds, Math.max(tokenIds.length, maxTokens));
        this.numTokens = tokenIds.length;
        this.blockTable = new BlockTable((maxTokens + blockSize - 1) / blockSize);
    }

    public String requestId() {
        return requestId;
    }

    public SamplingParams sampling() {
        return sampling;
    }

    public long seed() {
        return seed;
    }

    public int numPromptTokens() {
        return numPromptTokens;
    }

    /** Tokens generated so far (prompt excluded). */
    public int numOutputTokens() {
        return numTokens - numPromptTokens;
    }

    public int numTokens() {
        return numTokens;
    }

    /** Tokens whose K/V are in the cache (positions {@code [0, numComputedTokens)}). */
    public int numComputedTokens() {
        return numComputedTokens;
    }

    public void setNumComputedTokens(int n) {
        numComputedTokens = n;
    }

    /** Backing token array; valid entries are {@code [0, numTokens())}. */
    public int[] tokens() {
        return tokens;
    }

    public int lastToken() {
        return tokens[numTokens - 1];
    }

    public void appendToken(int token) {
        if (numTokens == tokens.length) {
            tokens = Arrays.copyOf(tokens, tokens.length * 2);
        }
        tokens[numTokens++] = token;
    }

    public BlockTable blockTable() {
        return blockTable;
    }

    /** Chained hashes of the prompt's full blocks ({@link io.tandem.kvcache.BlockHasher}); valid up to {@link #numHashedBlocks()}. */
    public long[] blockHashes() {
        return blockHashes;
    }

    public int numHashedBlocks() {
        return numHashedBlocks;
    }

    public void setBlockHashes(long[] hashes, int numHashed) {
        this.blockHashes = hashes;
        this.numHashedBlocks = numHashed;
    }

    /** Leading blocks already published in the prefix cache. */
    public int numCachedBlocks() {
        return numCachedBlocks;
    }

    public void setNumCachedBlocks(int n) {
        numCachedBlocks = n;
    }

    public SequenceStatus status() {
        return status;
    }

    public void setStatus(SequenceStatus status) {
        this.status = status;
    }
}
