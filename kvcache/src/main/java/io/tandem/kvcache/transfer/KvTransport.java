package io.tandem.kvcache.transfer;

import io.tandem.kvcache.KvCacheStorage;
import io.tandem.kvcache.KvHandle;
import java.util.concurrent.CompletableFuture;

/**
 * The decode side of a KV hand-off: pulls the pages a {@link KvHandle} names into local blocks
 * and tells the owner when it no longer needs them. The in-process implementation copies shared
 * memory; {@link NettyKvTransport} pulls over the Netty data plane ({@link KvPageServer}).
 */
public interface KvTransport {

    /**
     * Copies every page {@code (layer, handle.blockIds()[i])} of the handle into
     * {@code (layer, dstBlockIds[i])} of {@code dst}, for all layers.
     *
     * @return completes when every page is written, or exceptionally (e.g. a stale handle, a
     *         failed or timed-out fetch); never left pending forever
     */
    CompletableFuture<Void> pull(KvHandle handle, KvCacheStorage dst, int[] dstBlockIds);

    /**
     * Asks the owner to keep the handle's blocks for another lease timeout: called periodically by
     * a holder whose request waits (queued, or pulling). Never blocks; a lease that is already gone
     * stays gone (the next pull fails, naming why). The default does nothing, for transports whose
     * source keeps no deadline (test doubles); both real transports renew.
     */
    default void renew(KvHandle handle) {
    }

    /** Releases the lease on the handle's blocks. Idempotent. */
    void release(KvHandle handle);
}
