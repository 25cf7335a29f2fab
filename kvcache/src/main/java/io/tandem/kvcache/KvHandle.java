package io.tandem.kvcache;

/**
 * What a prefill worker hands to a decode worker: where the prompt's KV lives and under which
 * lease (DESIGN.md §3). The decode worker pulls the pages {@code (layer, blockIds[i])} for every
 * layer, then releases the handle so the prefill worker can free (or keep for prefix reuse) the
 * blocks.
 *
 * @param workerId  id of the prefill worker that owns the blocks
 * @param epoch     that worker's start epoch; a handle from an earlier epoch is stale
 * @param leaseId   lease under which the blocks are kept
 * @param blockIds  physical block ids on the prefill worker, logical order
 * @param numTokens tokens whose K/V are in those blocks (positions {@code [0, numTokens)})
 * @param spec      KV geometry and dtype of the pages
 */
public record KvHandle(String workerId, long epoch, long leaseId, int[] blockIds, int numTokens, KvCacheSpec spec) {

    public KvHandle {
        if (blockIds.length != spec.blocksFor(numTokens)) {
            throw new IllegalArgumentException("KV handle has " + blockIds.length + " blocks for "
                    + numTokens + " tokens of block size " + spec.blockSize());
        }
        blockIds = blockIds.clone();
    }

    /** Pages the handle covers: {@code numLayers × blockIds.length}. */
    public int numPages() {
        return spec.numLayers() * blockIds.length;
    }

    /** Bytes the handle covers. */
    public long byteSize() {
        return numPages() * spec.pageBytes();
    }
}
