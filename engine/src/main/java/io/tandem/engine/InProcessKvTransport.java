package io.tandem.engine;

import io.tandem.kvcache.KvCacheSpec;
import io.tandem.kvcache.KvCacheStorage;
import io.tandem.kvcache.KvHandle;
import io.tandem.kvcache.transfer.KvTransport;
import java.util.concurrent.CompletableFuture;

/**
 * The hand-off inside one JVM ({@code tandem serve}): pages are copied straight out of the
 * prefill engine's KV memory, no serialization, and release goes to the prefill engine's
 * command queue. The copy runs on the prefill engine thread, which owns the lease: it checks the
 * lease is still held and copies before the lease can expire or be released, so the source
 * blocks cannot be handed to another prompt mid-copy. Bounded by the prompt's KV size.
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
        return prefill.copyLeasedPages(handle, dst, dstBlockIds);
    }

    @Override
    public void release(KvHandle handle) {
        if (!prefill.release(handle.leaseId())) {
            LOG.warn("prefill command queue full; lease {} will be freed when it expires", handle.leaseId());
        }
    }
}
