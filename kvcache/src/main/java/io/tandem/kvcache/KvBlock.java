package io.tandem.kvcache;

/**
 * Metadata of one physical KV block (vLLM's {@code KVCacheBlock}). The block's memory lives in
 * {@link KvCacheStorage}; this object carries its reference count, its prefix-cache hash and its
 * links in the {@link FreeKvCacheBlockQueue}. Mutated by the engine thread only.
 */
public final class KvBlock {
    /** {@link #blockHash()} value of a block that is not in the prefix cache. */
    public static final long NO_HASH = 0L;

    private final int blockId;
    int refCount;
    long blockHash = NO_HASH;
    // Intrusive links of the free queue; both null when the block is not in it.
    KvBlock prevFree;
    KvBlock nextFree;

    KvBlock(int blockId) {
        this.blockId = blockId;
    }

    public int blockId() {
        return blockId;
    }

    /** Number of sequences using this block. */
    public int refCount() {
        return refCount;
    }

    /** Hash of the full block's tokens chained with its prefix, or {@link #NO_HASH}. */
    public long blockHash() {
        return blockHash;
    }

    @Override
    public String toString() {
        return "KvBlock[" + blockId + ", ref=" + refCount + "]";
    }
}
