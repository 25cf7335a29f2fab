package io.tandem.kvcache;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * Prefix-cache keys of full KV blocks: {@code blockHash = H(parentHash, tokenIds, extra)} (vLLM
 * v1 {@code hash_block_tokens}), where {@code parentHash} chains the block to everything before
 * it and {@code extra} binds it to a model and an optional tenant salt, so two requests share a
 * block only if their whole prefix, model and salt are equal. H is SHA-256 truncated to 64 bits
 * (vLLM's default is SHA-256 too); a 64-bit key collides with probability about 2⁻⁶⁴ per pair.
 *
 * <p>The router and the workers must use this same function and block size (DESIGN.md §4). One
 * instance per thread (it reuses its digest and buffer).
 */
public final class BlockHasher {
    /** Parent hash of a sequence's first block. */
    public static final long ROOT = 0x5EED_7A4D_E000_0001L;

    private final MessageDigest sha256;
    private final byte[] buffer;
    private final int blockSize;
    private final byte[] modelId;

    /**
     * @param blockSize tokens per block
     * @param modelId   model the KV belongs to
     */
    public BlockHasher(int blockSize, String modelId) {
        try {
            this.sha256 = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK has no SHA-256", e);
        }
        this.blockSize = blockSize;
        this.buffer = new byte[8 + 4 * blockSize + 8];
        this.modelId = modelId.getBytes(StandardCharsets.UTF_8);
    }

    public int blockSize() {
        return blockSize;
    }

    /**
     * The {@code extra} input of every block hash of one request: the model id and the request's
     * {@code cache_salt} (or {@code null}).
     */
    public long extraHash(String cacheSalt) {
        sha256.update(modelId);
        if (cacheSalt != null) {
            sha256.update((byte) 0);
            sha256.update(cacheSalt.getBytes(StandardCharsets.UTF_8));
        }
        return first8(sha256.digest());
    }

    /** Hash of the full block {@code tokens[from, from + blockSize)} following {@code parentHash}. */
    public long hashBlock(long parentHash, int[] tokens, int from, long extra) {
        int at = putLong(buffer, 0, parentHash);
        for (int i = 0; i < blockSize; i++) {
            int t = tokens[from + i];
            buffer[at++] = (byte) t;
            buffer[at++] = (byte) (t >>> 8);
            buffer[at++] = (byte) (t >>> 16);
            buffer[at++] = (byte) (t >>> 24);
        }
        putLong(buffer, at, extra);
        long h = first8(sha256.digest(buffer));
        // 0 is KvBlock.NO_HASH; remap the one value that would collide with it.
        return h == KvBlock.NO_HASH ? 1 : h;
    }

    /**
     * Chained hashes of the full blocks of {@code tokens[0, numTokens)}, written to {@code out}.
     *
     * @return the number of full blocks hashed
     */
    public int hashFullBlocks(int[] tokens, int numTokens, long extra, long[] out) {
        int n = numTokens / blockSize;
        long parent = ROOT;
        for (int b = 0; b < n; b++) {
            parent = hashBlock(parent, tokens, b * blockSize, extra);
            out[b] = parent;
        }
        return n;
    }

    private static long first8(byte[] d) {
        long h = 0;
        for (int i = 0; i < 8; i++) {
            h = (h << 8) | (d[i] & 0xFF);
        }
        return h;
    }

    private static int putLong(byte[] b, int at, long v) {
        for (int i = 0; i < 8; i++) {
            b[at++] = (byte) (v >>> (8 * i));
        }
        return at;
    }
}
