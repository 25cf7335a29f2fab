package io.tandem.kvcache.transfer;

import io.tandem.kvcache.LayerProgress;

/**
 * Server-side state of one {@code PULL}: which pages of each layer are still to send. Pages go out
 * only once final ({@link LayerProgress#isFinal}); among final pages, the lowest layer first and
 * block order within a layer, grouped into runs of consecutive block ids. So a finished prefill's
 * pages go layer by layer, and a chunked prefill still computing sends every layer's finished
 * blocks while it computes the next chunk. Confined to the connection's event loop.
 */
final class ServedPull {
    /** Returned by {@link #nextReadyLayer()} when no unsent page is final yet. */
    static final int NONE_READY = -1;

    final long requestId;
    final long epoch;
    final long leaseId;
    final int layerFrom;
    final int layerTo;
    final int[] blockIds;
    /** Per layer of the range: index into {@link #blockIds} of its next page to send. */
    private final int[] next;
    /** Layers below this one are fully sent. */
    private int lowestOpenLayer;
    /** Set once the provider accepted the pull; {@link LayerProgress#finished()} for a finished prefill. */
    private LayerProgress progress;
    /** Waiting for {@link #progress} to change: out of the ready queue until woken. */
    boolean parked;
    /** Set by {@code CANCEL} or when the connection ends; such a pull sends nothing more. */
    private boolean cancelled;

    ServedPull(long requestId, long epoch, long leaseId, int layerFrom, int layerTo, int[] blockIds) {
        this.requestId = requestId;
        this.epoch = epoch;
        this.leaseId = leaseId;
        this.layerFrom = layerFrom;
        this.layerTo = layerTo;
        this.blockIds = blockIds;
        this.next = new int[layerTo - layerFrom];
        this.lowestOpenLayer = layerFrom;
    }

    void setProgress(LayerProgress progress) {
        this.progress = progress;
    }

    LayerProgress progress() {
        return progress;
    }

    /** Every page has been handed out (also true for a pull of no blocks). */
    boolean finished() {
        return lowestOpenLayer >= layerTo || blockIds.length == 0;
    }

    boolean cancelled() {
        return cancelled;
    }

    void cancel() {
        cancelled = true;
    }

    /** The lowest layer whose next unsent page is final, or {@link #NONE_READY}. */
    int nextReadyLayer() {
        for (int layer = lowestOpenLayer; layer < layerTo; layer++) {
            int index = next[layer - layerFrom];
            if (index < blockIds.length && progress.isFinal(layer, blockIds[index])) {
                return layer;
            }
        }
        return NONE_READY;
    }

    /** Index into {@link #blockIds} of {@code layer}'s next page. */
    int nextIndex(int layer) {
        return next[layer - layerFrom];
    }

    /**
     * Length of the run of {@code layer} starting at its next page (which is final): block ids
     * consecutive, each page final, at most {@code maxPages} (≥ 1), not past the end of the layer.
     */
    int nextRunLength(int layer, int maxPages) {
        int index = next[layer - layerFrom];
        int count = 1;
        while (count < maxPages && index + count < blockIds.length
                && blockIds[index + count] == blockIds[index + count - 1] + 1
                && progress.isFinal(layer, blockIds[index + count])) {
            count++;
        }
        return count;
    }

    /** Moves past {@code count} pages of {@code layer}. */
    void advance(int layer, int count) {
        next[layer - layerFrom] += count;
        while (lowestOpenLayer < layerTo && next[lowestOpenLayer - layerFrom] == blockIds.length) {
            lowestOpenLayer++;
        }
    }
}
