package io.tandem.kvcache.transfer;

import io.tandem.kvcache.KvCacheStorage;
import io.tandem.kvcache.LayerProgress;
import java.util.concurrent.CompletionStage;

/**
 * What a {@link KvPageServer} serves: the prefill worker's KV memory and its leases.
 *
 * <p>Both lease methods are called on Netty event-loop threads and must not block: a provider
 * backed by an engine thread enqueues the question and completes the stage from that thread.
 *
 * <p>Lifetime: pages are written to sockets straight out of {@link #storage()} (no copy), so the
 * storage must stay open until the server is closed, and a lease that {@link #validate} accepted
 * must keep its blocks (not free or reuse them) until it is released or expires. Make the lease
 * expiry longer than the pullers' {@code kvTransferTimeout}, so a block is never rewritten while
 * its pages are on the wire.
 */
public interface KvPageProvider {

    /** The KV memory pages are read from; its geometry fixes the page size the server serves. */
    KvCacheStorage storage();

    /**
     * Checks that lease {@code leaseId} of worker epoch {@code epoch} is live and holds every one of
     * {@code blockIds}. The server has already checked that the ids are inside {@link #storage()}.
     *
     * @return completes with {@link KvTransferStatus#OK} or the error to send
     *         ({@link KvTransferStatus#STALE_EPOCH}, {@link KvTransferStatus#UNKNOWN_LEASE},
     *         {@link KvTransferStatus#BAD_BLOCK_ID}); completing exceptionally sends
     *         {@link KvTransferStatus#INTERNAL}
     */
    CompletionStage<KvTransferStatus> validate(long epoch, long leaseId, int[] blockIds);

    /**
     * How far lease {@code leaseId}'s pages are computed, asked on the event loop right after
     * {@link #validate} accepted a pull: a lease handed out while its prefill still computes (an
     * early handle) has pages that become final layer by layer, and the server sends each page
     * only once it is final ({@link LayerProgress#isFinal}), waiting on {@link
     * LayerProgress#whenChanged} meanwhile; a failed progress ends the pull with {@link
     * KvTransferStatus#PREFILL_ABORTED}. Must not block.
     *
     * @return the lease's progress; {@link LayerProgress#finished()} when every page is final
     *         (the default: a provider that exports only finished prefills); {@code null} if the
     *         lease is no longer held (the pull then fails with {@link KvTransferStatus#UNKNOWN_LEASE})
     */
    default LayerProgress progress(long epoch, long leaseId) {
        return LayerProgress.finished();
    }

    /**
     * The puller is done with lease {@code leaseId}: free (or keep for prefix reuse) its blocks.
     * Idempotent: an unknown, expired or stale-epoch lease is ignored.
     */
    void release(long epoch, long leaseId);

    /**
     * The puller still needs lease {@code leaseId} (its request waits, or a pull is long): push its
     * deadline by the lease timeout. Must not block. A lease not held, or of another epoch, is
     * ignored: it stays gone, and a pull of it is refused by {@link #validate}.
     */
    void renew(long epoch, long leaseId);
}
