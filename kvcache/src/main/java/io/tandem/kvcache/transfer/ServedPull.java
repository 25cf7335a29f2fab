package io.tandem.kvcache.transfer;

/**
 * Server-side state of one {@code PULL}: which page comes next. Pages go out layer by layer, in
 * block order within a layer, grouped into runs of consecutive block ids. Confined to the
 * connection's event loop.
 */
final class ServedPull {
    final long requestId;
    final long epoch;
    final long leaseId;
    final int layerFrom;
    final int layerTo;
    final int[] blockIds;
    /** Layer of the next page. */
    private int layer;
    /** Index into {@link #blockIds} of the next page. */
    private int index;
    /** Set by {@code CANCEL} or when the connection ends; such a pull sends nothing more. */
    private boolean cancelled;

    ServedPull(long requestId, long epoch, long leaseId, int layerFrom, int layerTo, int[] blockIds) {
        this.requestId = requestId;
        this.epoch = epoch;
        this.leaseId = leaseId;
        this.layerFrom = layerFrom;
        this.layerTo = layerTo;
        this.blockIds = blockIds;
        this.layer = layerFrom;
    }

    int layer() {
        return layer;
    }

    int index() {
        return index;
    }

    /** Every page has been handed out (also true for a pull of no blocks). */
    boolean finished() {
        return layer >= layerTo || blockIds.length == 0;
    }

    boolean cancelled() {
        return cancelled;
    }

    void cancel() {
        cancelled = true;
    }

    /**
     * Length of the run starting at the next page: block ids consecutive, at most {@code maxPages}
     * (≥ 1), not past the end of the layer.
     */
    int nextRunLength(int maxPages) {
        int count = 1;
        while (count < maxPages && index + count < blockIds.length
                && blockIds[index + count] == blockIds[index + count - 1] + 1) {
            count++;
        }
        return count;
    }

    /** Moves past {@code count} pages of the current layer, to the next layer at its end. */
    void advance(int count) {
        index += count;
        if (index == blockIds.length) {
            index = 0;
            layer++;
        }
    }
}
