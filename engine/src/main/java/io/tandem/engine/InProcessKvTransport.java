package io.tandem.engine;

import io.tandem.kvcache.KvCacheSpec;
import io.tandem.kvcache.KvCacheStorage;
import io.tandem.kvcache.KvHandle;
import io.tandem.kvcache.transfer.KvTransport;
import java.util.concurrent.CompletableFuture;

/**
 * The hand-off inside one JVM ({@code tandem serve}): pages are copied straight out of the
 * prefill engine's KV memory, no serialization, and release goes to the prefill engine's
 * command queue. The copy runs on the caller (the decode engine thread), bounded by the prompt's
 * KV size, and counts only if the handle's lease was held before and after it: a lease that has
 * expired or was released may have had its blocks handed to another prompt.
 */
public final class InProcessKvTransport implements KvTransport {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(InProcessKvTransport.class);
    private final PrefillEngine prefill;

    public InProcessKvTransport(PrefillEngine prefill) {
        this.prefill = prefill;
    }

    @Override
    public CompletableFuture<Void> pull(KvHandle handle, KvCacheStorage dst, int[] dstBlockIds) {
        KvCacheSpec spec = handle.spec();
        if (!handle.workerId().equals(prefill.workerId()) || handle.epoch() != prefill.epoch()) {
            return CompletableFuture.failedFuture(new IllegalStateException("stale KV handle from "
                    + handle.workerId() + " epoch " + handle.epoch()));
        }
        if (!spec.equals(dst.spec()) || dstBlockIds.length != handle.blockIds().length) {
            return CompletableFuture.failedFuture(new IllegalArgumentException("KV handle geometry " + spec
                    + " with " + handle.blockIds().length + " blocks does not match destination " + dst.spec()
                    + " with " + dstBlockIds.length));
        }
        try {
            prefill.copyLeasedPages(handle, dst, dstBlockIds);
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
        return CompletableFuture.completedFuture(null);
    }

    /** Enqueues a renewal on the prefill engine; a lease it no longer holds stays gone. */
    @Override
    public void renew(KvHandle handle) {
        if (!prefill.renew(handle.leaseId(), held -> { })) {
            LOG.warn("prefill command queue full; lease {} not renewed", handle.leaseId());
        }
    }

    @Override
    public void release(KvHandle handle) {
        if (!prefill.release(handle.leaseId())) {
            LOG.warn("prefill command queue full; lease {} will be freed when it expires", handle.leaseId());
        }
    }
}
