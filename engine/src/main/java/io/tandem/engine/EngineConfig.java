package io.tandem.engine;

import io.tandem.kvcache.KvDtype;
import java.time.Duration;

/**
 * Sizes and limits of one engine (prefill or decode), as vLLM's engine arguments name them.
 *
 * @param blockSize             tokens per KV block ({@code --block-size}, default 16)
 * @param kvDtype               KV element type ({@code --kv-dtype})
 * @param kvCacheBytes          memory for the KV cache in bytes; the block count is this divided
 *                              by the block size in bytes, capped at what {@code maxNumSeqs} full
 *                              contexts need
 * @param maxNumSeqs            sequences per step at most ({@code --max-num-seqs})
 * @param maxNumBatchedTokens   tokens per step at most ({@code --max-num-batched-tokens})
 * @param queueCapacity         commands waiting for the engine thread at most; a full queue
 *                              rejects instead of blocking
 * @param leaseTimeout          how long a prefill worker keeps exported KV blocks without a
 *                              release or renewal
 * @param enablePrefixCaching   reuse the KV of full blocks whose token prefix was computed before
 *                              ({@code --enable-prefix-caching}, on by default as in vLLM v1)
 * @param kvLoadFailurePolicy   what the decode engine does when a KV pull fails
 */
public record EngineConfig(int blockSize, KvDtype kvDtype, long kvCacheBytes, int maxNumSeqs, int maxNumBatchedTokens,
                           int queueCapacity, Duration leaseTimeout, boolean enablePrefixCaching,
                           KvLoadFailurePolicy kvLoadFailurePolicy) {

    /** A configuration with prefix caching on and failed KV pulls ending their request. */
    public EngineConfig(int blockSize, KvDtype kvDtype, long kvCacheBytes, int maxNumSeqs, int maxNumBatchedTokens,
                        int queueCapacity, Duration leaseTimeout) {
        this(blockSize, kvDtype, kvCacheBytes, maxNumSeqs, maxNumBatchedTokens, queueCapacity, leaseTimeout, true);
    }

    /** A configuration whose failed KV pulls end their request. */
    public EngineConfig(int blockSize, KvDtype kvDtype, long kvCacheBytes, int maxNumSeqs, int maxNumBatchedTokens,
                        int queueCapacity, Duration leaseTimeout, boolean enablePrefixCaching) {
        this(blockSize, kvDtype, kvCacheBytes, maxNumSeqs, maxNumBatchedTokens, queueCapacity, leaseTimeout,
                enablePrefixCaching, KvLoadFailurePolicy.FAIL);
    }

    public EngineConfig {
        if (maxNumSeqs < 1) {
            throw new IllegalArgumentException("max-num-seqs must be >= 1, got " + maxNumSeqs);
        }
        if (maxNumBatchedTokens < 1) {
            throw new IllegalArgumentException("max-num-batched-tokens must be >= 1, got " + maxNumBatchedTokens);
        }
        if (kvCacheBytes < 1) {
            throw new IllegalArgumentException("KV cache memory must be positive, got " + kvCacheBytes);
        }
        if (queueCapacity < 1 || Integer.bitCount(queueCapacity) != 1) {
            throw new IllegalArgumentException("queue capacity must be a power of two, got " + queueCapacity);
        }
    }

    /**
     * KV blocks to allocate: what {@link #kvCacheBytes} holds, capped at {@link #maxNumSeqs} full
     * contexts of {@code contextLength} tokens (more could never be used).
     *
     * @throws IllegalArgumentException if not even one full context fits, saying how much is needed
     */
    public int numKvBlocks(io.tandem.kvcache.KvCacheSpec spec, int contextLength) {
        long fit = kvCacheBytes / spec.blockBytes();
        long perContext = spec.blocksFor(contextLength);
        if (fit < perContext) {
            throw new IllegalArgumentException("KV cache of " + (kvCacheBytes >> 20) + " MiB holds " + fit
                    + " blocks; one context of " + contextLength + " tokens needs " + perContext + " blocks ("
                    + ((perContext * spec.blockBytes()) >> 20) + " MiB): raise --kv-cache-memory or lower --max-model-len");
        }
        return (int) Math.min(fit, Math.min(Integer.MAX_VALUE, perContext * maxNumSeqs));
    }

    /** Defaults for a small machine: block 16, f32 KV, 2 GiB of KV, 64 sequences, 512 tokens a step. */
    public static EngineConfig defaults() {
        return new EngineConfig(16, KvDtype.F32, 2L << 30, 64, 512, 1024, Duration.ofSeconds(30));
    }
}
