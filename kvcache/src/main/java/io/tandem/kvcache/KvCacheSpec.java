package io.tandem.kvcache;

/**
 * Geometry of a paged KV cache: {@code numLayers × numKvHeads × headDim} per token, grouped into
 * blocks of {@code blockSize} tokens.
 *
 * <p>A <em>page</em> is one (layer, block): all K and V of {@code blockSize} tokens of one layer,
 * laid out {@code [K|V][kvHead][token][dim]} and contiguous, so it is the unit of transfer and of
 * page faults (DESIGN.md §4).
 *
 * @param numLayers  transformer layers
 * @param numKvHeads key/value heads (grouped-query attention)
 * @param headDim    elements per head
 * @param blockSize  tokens per block
 * @param dtype      element type
 */
public record KvCacheSpec(int numLayers, int numKvHeads, int headDim, int blockSize, KvDtype dtype) {

    public KvCacheSpec {
        if (numLayers < 1 || numKvHeads < 1 || headDim < 1) {
            throw new IllegalArgumentException("KV geometry must be positive: layers=" + numLayers
                    + " kvHeads=" + numKvHeads + " headDim=" + headDim);
        }
        if (blockSize < 1 || Integer.bitCount(blockSize) != 1) {
            throw new IllegalArgumentException("block size must be a power of two, got " + blockSize);
        }
        if (dtype == null) {
            throw new IllegalArgumentException("dtype must be set");
        }
    }

    /** Bytes of the K (or the V) half of a page: {@code numKvHeads × blockSize × headDim × dtype}. */
    public long halfPageBytes() {
        return (long) numKvHeads * blockSize * headDim * dtype.bytes();
    }

    /** Bytes of one page (one layer of one block, K and V). */
    public long pageBytes() {
        return 2 * halfPageBytes();
    }

    /** Bytes of one block over all layers. */
    public long blockBytes() {
        return pageBytes() * numLayers;
    }

    /** Blocks needed to hold {@code numTokens} tokens. */
    public int blocksFor(int numTokens) {
        return (numTokens + blockSize - 1) / blockSize;
    }

    /** Byte offset, inside a page, of the key vector of {@code kvHead} at {@code tokenInBlock}. */
    public long keyOffsetInPage(int kvHead, int tokenInBlock) {
        return ((long) kvHead * blockSize + tokenInBlock) * headDim * dtype.bytes();
    }

    /** Byte offset, inside a page, of the value vector of {@code kvHead} at {@code tokenInBlock}. */
    public long valueOffsetInPage(int kvHead, int tokenInBlock) {
        return halfPageBytes() + keyOffsetInPage(kvHead, tokenInBlock);
    }
}
