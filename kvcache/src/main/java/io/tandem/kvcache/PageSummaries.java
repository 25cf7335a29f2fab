package io.tandem.kvcache;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * Quest page summaries of a prompt's KV (Tang et al., ICML'24, "Quest: Query-Aware Sparsity for
 * Efficient Long-Context LLM Inference", §3.2): per page {@code (layer, block)} and per KV head,
 * the element-wise minimum and maximum of the keys of the block's tokens. For any key {@code k} of
 * the page, {@code k_i ∈ [min_i, max_i]}, so {@code q·k ≤ Σ_i max(q_i·min_i, q_i·max_i)}
 * ({@link #upperBound}): a decode worker can rank pages against a query without fetching them
 * (demand paging, DESIGN.md §4).
 *
 * <p>Layout: {@code [layer][block][kvHead][min|max][headDim]}, IEEE 754 binary16 little-endian,
 * {@code numLayers × numBlocks × numKvHeads × 2 × headDim × 2} bytes (the wire format of
 * {@code tandem.v1.KvPageSummaries.data}). {@code block} is the logical index in the prompt (the
 * i-th of the handle's block ids). The last block may be partial: only its valid tokens count.
 *
 * <p>binary16 halves the bytes of f32 and is exact for an f16 KV cache; for an f32 cache the
 * minimum is rounded toward −∞ and the maximum toward +∞, so the stored box still contains every
 * key and the bound stays an upper bound (at most one f16 ulp, 2⁻¹¹ relative, looser). A key
 * beyond the f16 range (±65504) widens its box to ±∞; a NaN key makes its page's bound NaN (rank
 * such a page as "must fetch").
 *
 * <p>Immutable and thread-safe.
 */
public final class PageSummaries {
    /**
     * Summary bytes one prompt may carry at most: 64 MiB, the summaries of 8192 tokens of Llama-3-8B
     * (32 layers × 8 KV heads × head dim 128, block 16). A prompt whose summaries would be larger
     * gets none ({@link #fits}); gRPC control messages allow twice this.
     */
    public static final long MAX_BYTES = 64L << 20;

    private static final VarHandle F16 = MethodHandles.byteArrayViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32_LAYOUT = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfShort F16_LAYOUT = ValueLayout.JAVA_SHORT_UNALIGNED;

    private final int numLayers;
    private final int numBlocks;
    private final int numKvHeads;
    private final int headDim;
    /** binary16 little-endian, laid out as the class comment says. */
    private final byte[] data;

    private PageSummaries(int numLayers, int numBlocks, int numKvHeads, int headDim, byte[] data) {
        this.numLayers = numLayers;
        this.numBlocks = numBlocks;
        this.numKvHeads = numKvHeads;
        this.headDim = headDim;
        this.data = data;
    }

    /** Bytes of the summaries of {@code numBlocks} blocks of geometry {@code spec}. */
    public static long byteSize(KvCacheSpec spec, int numBlocks) {
        return (long) spec.numLayers() * numBlocks * spec.numKvHeads() * 2 * spec.headDim() * Short.BYTES;
    }

    /** Whether the summaries of a prompt of {@code numTokens} tokens stay within {@link #MAX_BYTES}. */
    public static boolean fits(KvCacheSpec spec, int numTokens) {
        return byteSize(spec, spec.blocksFor(numTokens)) <= MAX_BYTES;
    }

    /** The longest prompt, in tokens, whose summaries stay within {@link #MAX_BYTES}. */
    public static long maxTokens(KvCacheSpec spec) {
        return MAX_BYTES / byteSize(spec, 1) * spec.blockSize();
    }

    /**
     * Summarizes the keys of a prompt's pages as they are in {@code storage} (f32 or f16): for block
     * {@code i}, the tokens {@code [i × blockSize, min((i + 1) × blockSize, numTokens))}. Reads
     * {@code numTokens × numLayers × numKvHeads × headDim} key elements once.
     *
     * @param blockIds  the prompt's physical block ids in logical order ({@code spec.blocksFor(numTokens)} of them)
     * @param numTokens tokens whose K are written, {@code >= 1}
     * @throws IllegalArgumentException if the block count does not match {@code numTokens}, or a
     *                                  block id is outside the storage
     */
    public static PageSummaries compute(KvCacheStorage storage, int[] blockIds, int numTokens) {
        KvCacheSpec spec = storage.spec();
        if (numTokens < 1 || blockIds.length != spec.blocksFor(numTokens)) {
            throw new IllegalArgumentException(blockIds.length + " blocks for " + numTokens + " tokens of block size "
                    + spec.blockSize());
        }
        int headDim = spec.headDim();
        int blockSize = spec.blockSize();
        boolean f16 = spec.dtype() == KvDtype.F16;
        byte[] data = new byte[Math.toIntExact(byteSize(spec, blockIds.length))];
        float[] min = new float[headDim];
        float[] max = new float[headDim];
        long at = 0;
        for (int layer = 0; layer < spec.numLayers(); layer++) {
            MemorySegment pages = storage.layer(layer);
            for (int b = 0; b < blockIds.length; b++) {
                if (blockIds[b] < 0 || blockIds[b] >= storage.numBlocks()) {
                    throw new IllegalArgumentException("block id " + blockIds[b] + " outside the KV cache of "
                            + storage.numBlocks() + " blocks");
                }
                long page = storage.pageOffset(blockIds[b]);
                int tokens = Math.min(blockSize, numTokens - b * blockSize);
                for (int h = 0; h < spec.numKvHeads(); h++) {
                    java.util.Arrays.fill(min, Float.POSITIVE_INFINITY);
                    java.util.Arrays.fill(max, Float.NEGATIVE_INFINITY);
                    for (int t = 0; t < tokens; t++) {
                        long key = page + spec.keyOffsetInPage(h, t);
                        for (int i = 0; i < headDim; i++) {
                            float k = f16 ? Float.float16ToFloat(pages.get(F16_LAYOUT, key + 2L * i))
                                    : pages.get(F32_LAYOUT, key + 4L * i);
                            min[i] = Math.min(min[i], k);
                            max[i] = Math.max(max[i], k);
                        }
                    }
                    for (int i = 0; i < headDim; i++) {
                        F16.set(data, (int) at + 2 * i, roundDown(min[i]));
                        F16.set(data, (int) at + 2 * (headDim + i), roundUp(max[i]));
                    }
                    at += 4L * headDim;
                }
            }
        }
        return new PageSummaries(spec.numLayers(), blockIds.length, spec.numKvHeads(), headDim, data);
    }

    /**
     * Reads summaries in the wire layout (see the class comment).
     *
     * @param bytes its remaining bytes are copied (its position is left as it was)
     * @throws IllegalArgumentException if {@code bytes} has not {@link #byteSize} bytes remaining, naming both lengths
     */
    public static PageSummaries fromBytes(KvCacheSpec spec, int numBlocks, java.nio.ByteBuffer bytes) {
        long expected = byteSize(spec, numBlocks);
        if (bytes.remaining() != expected) {
            throw new IllegalArgumentException("page summaries of " + numBlocks + " blocks x " + spec.numLayers()
                    + " layers x " + spec.numKvHeads() + " KV heads x head dim " + spec.headDim() + " need " + expected
                    + " bytes, got " + bytes.remaining());
        }
        byte[] data = new byte[bytes.remaining()];
        bytes.duplicate().get(data);
        return new PageSummaries(spec.numLayers(), numBlocks, spec.numKvHeads(), spec.headDim(), data);
    }

    /** A copy of the bytes, in the wire layout. */
    public byte[] toByteArray() {
        return data.clone();
    }

    public int numLayers() {
        return numLayers;
    }

    /** Blocks per layer (the handle's block count). */
    public int numBlocks() {
        return numBlocks;
    }

    public int numKvHeads() {
        return numKvHeads;
    }

    public int headDim() {
        return headDim;
    }

    /** Bytes held. */
    public int byteSize() {
        return data.length;
    }

    /** Whether these summaries have the geometry of {@code spec} and {@code numBlocks} blocks. */
    public boolean matches(KvCacheSpec spec, int numBlocks) {
        return numLayers == spec.numLayers() && numKvHeads == spec.numKvHeads() && headDim == spec.headDim()
                && this.numBlocks == numBlocks;
    }

    /** Minimum of channel {@code dim} of the keys of KV head {@code kvHead} in page {@code (layer, block)}. */
    public float min(int layer, int block, int kvHead, int dim) {
        return Float.float16ToFloat((short) F16.get(data, offset(layer, block, kvHead) + 2 * checkDim(dim)));
    }

    /** Maximum of channel {@code dim} of the keys of KV head {@code kvHead} in page {@code (layer, block)}. */
    public float max(int layer, int block, int kvHead, int dim) {
        return Float.float16ToFloat((short) F16.get(data, offset(layer, block, kvHead) + 2 * (headDim + checkDim(dim))));
    }

    /**
     * Quest's criticality of page {@code (layer, block)} for one query head attending to KV head
     * {@code kvHead}: {@code Σ_i max(q_i·min_i, q_i·max_i)} over the head's {@code headDim}
     * channels, an upper bound of {@code q·k} for every key {@code k} of the page (before the
     * {@code 1/√headDim} scale). Summed in double; a zero {@code q_i} contributes 0 even against an
     * infinite bound.
     *
     * @param query       {@code query[queryOffset .. queryOffset + headDim)}, after RoPE
     * @throws IndexOutOfBoundsException for a layer, block or KV head out of range, or a query too short
     */
    public double upperBound(int layer, int block, int kvHead, float[] query, int queryOffset) {
        java.util.Objects.checkFromIndexSize(queryOffset, headDim, query.length);
        int base = offset(layer, block, kvHead);
        double sum = 0;
        for (int i = 0; i < headDim; i++) {
            float q = query[queryOffset + i];
            if (q == 0) {
                continue;
            }
            float lo = Float.float16ToFloat((short) F16.get(data, base + 2 * i));
            float hi = Float.float16ToFloat((short) F16.get(data, base + 2 * (headDim + i)));
            sum += Math.max((double) q * lo, (double) q * hi);
        }
        return sum;
    }

    private int offset(int layer, int block, int kvHead) {
        java.util.Objects.checkIndex(layer, numLayers);
        java.util.Objects.checkIndex(block, numBlocks);
        java.util.Objects.checkIndex(kvHead, numKvHeads);
        return (((layer * numBlocks + block) * numKvHeads + kvHead) * 2 * headDim) * Short.BYTES;
    }

    private int checkDim(int dim) {
        return java.util.Objects.checkIndex(dim, headDim);
    }

    /** The largest binary16 not above {@code x} (−∞ below the range). */
    static short roundDown(float x) {
        short h = Float.floatToFloat16(x);
        if (!(Float.float16ToFloat(h) > x)) {
            return h; // exact, rounded down already, or NaN
        }
        int bits = h & 0xFFFF;
        if (bits == 0x0000) {
            return (short) 0x8001; // +0 → the negative subnormal closest to 0
        }
        return (short) ((bits & 0x8000) == 0 ? bits - 1 : bits + 1); // toward −∞ by one ulp
    }

    /** The smallest binary16 not below {@code x} (+∞ above the range). */
    static short roundUp(float x) {
        return (short) (roundDown(-x) ^ 0x8000);
    }
}
