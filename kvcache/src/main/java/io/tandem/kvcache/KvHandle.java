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
 * @param pageSummaries Quest summaries of the pages' keys ({@link PageSummaries}, one per
 *                  {@code (layer, blockIds[i])}), or {@code null}: an early handle (its keys are
 *                  not computed yet; the summaries come with the prefill's result), a prefill worker
 *                  with {@code --kv-page-summaries off}, or a prompt over {@link PageSummaries#MAX_BYTES}
 */
public record KvHandle(String workerId, long epoch, long leaseId, int[] blockIds, int numTokens, KvCacheSpec spec,
                       PageSummaries pageSummaries) {

    public KvHandle {
        if (blockIds.length != spec.blocksFor(numTokens)) {
            throw new IllegalArgumentException("KV handle has " + blockIds.length + " blocks for "
                    + numTokens + " tokens of block size " + spec.blockSize());
        }
        if (pageSummaries != null && !pageSummaries.matches(spec, blockIds.length)) {
            throw new IllegalArgumentException("page summaries of " + pageSummaries.numLayers() + " layers x "
                    + pageSummaries.numBlocks() + " blocks x " + pageSummaries.numKvHeads() + " KV heads x head dim "
                    + pageSummaries.headDim() + " do not match the handle's " + spec.numLayers() + " layers x "
                    + blockIds.length + " blocks x " + spec.numKvHeads() + " KV heads x head dim " + spec.headDim());
        }
        blockIds = blockIds.clone();
    }

    /** A handle without page summaries. */
    public KvHandle(String workerId, long epoch, long leaseId, int[] blockIds, int numTokens, KvCacheSpec spec) {
        this(workerId, epoch, leaseId, blockIds, numTokens, spec, null);
    }

    /** This handle with {@code summaries} (same lease and pages). */
    public KvHandle withPageSummaries(PageSummaries summaries) {
        return new KvHandle(workerId, epoch, leaseId, blockIds, numTokens, spec, summaries);
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
