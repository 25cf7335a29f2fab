package io.tandem.kvcache;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The off-heap memory of a paged KV cache: one arena per layer of {@code numBlocks} pages, laid
 * out {@code [block][K|V][kvHead][token][dim]}, all allocated at construction.
 *
 * <p>Owns its memory: {@link #close()} frees it (idempotent); segments handed out must not be used
 * after that. Thread-safe for reads and for writes to distinct pages.
 */
public final class KvCacheStorage implements AutoCloseable {
    private final KvCacheSpec spec;
    private final int numBlocks;
    private final Arena arena;
    private final MemorySegment[] layers;
    private boolean closed;

    /**
     * Allocates {@code numBlocks × spec.blockBytes()} bytes, zeroed.
     *
     * @throws IllegalStateException if the memory cannot be allocated, saying how much was asked
     */
    public KvCacheStorage(KvCacheSpec spec, int numBlocks) {
        if (numBlocks < 1) {
            throw new IllegalArgumentException("numBlocks must be >= 1, got " + numBlocks);
        }
        this.spec = spec;
        this.numBlocks = numBlocks;
        this.arena = Arena.ofShared();
        this.layers = new MemorySegment[spec.numLayers()];
        long layerBytes = spec.pageBytes() * numBlocks;
        try {
            for (int l = 0; l < layers.length; l++) {
                layers[l] = arena.allocate(layerBytes, 64);
            }
        } catch (OutOfMemoryError e) {
            arena.close();
            throw new IllegalStateException("cannot allocate the KV cache: " + numBlocks + " blocks x "
                    + spec.blockBytes() + " bytes = " + (layerBytes * layers.length >> 20) + " MiB", e);
        }
    }

    public KvCacheSpec spec() {
        return spec;
    }

    public int numBlocks() {
        return numBlocks;
    }

    /** The whole arena of one layer: {@code numBlocks} pages of {@code spec.pageBytes()} bytes. */
    public MemorySegment layer(int layer) {
        return layers[layer];
    }

    /** Byte offset of page {@code blockId} inside {@link #layer(int)}. */
    public long pageOffset(int blockId) {
        return (long) blockId * spec.pageBytes();
    }

    /** A view of one page (layer, block), {@code spec.pageBytes()} long. */
    public MemorySegment page(int layer, int blockId) {
        return layers[layer].asSlice(pageOffset(blockId), spec.pageBytes());
    }

    /** Total bytes held. */
    public long byteSize() {
        return spec.pageBytes() * numBlocks * layers.length;
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            arena.close();
        }
    }
}
