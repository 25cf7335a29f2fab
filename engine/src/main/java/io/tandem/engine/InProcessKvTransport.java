package io.tandem.engine;

import io.tandem.kvcache.KvCacheSpec;
import io.tandem.kvcache.KvCacheStorage;
import io.tandem.kvcache.KvHandle;
import io.tandem.kvcache.transfer.KvTransport;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.CompletableFuture;

/**
 * The hand-off inside one JVM ({@code tandem serve}): pages are copied straight out of the
 * prefill engine's KV memory, no serialization, and release goes to the prefill engine's
 * command queue. The copy runs on the caller (the decode engine thread) and is bounded by the
 * prompt's KV size; the handle's lease keeps the source pages alive meanwhile.
 */
public final class InProcessKvTransport implements KvTransport {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(InProcessKvTransport.class);
    private final PrefillEngine prefill;

    public InProcessKvTransport(PrefillEngine prefill) {
        this.prefill = prefill;
    }

    @Override
    public CompletableFuture<Void> pull(KvHandle handle, KvCacheStorage dst, int[] dstBlockIds) {
        KvCacheStorage src = prefill.storage();
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
        long pageBytes = spec.pageBytes();
        for (int layer = 0; layer < spec.numLayers(); layer++) {
            MemorySegment from = src.layer(layer);
            MemorySegment to = dst.layer(layer);
            for (int i = 0; i < dstBlockIds.length; i++) {
                MemorySegment.copy(from, src.pageOffset(handle.blockIds()[i]), to, dst.pageOffset(dstBlockIds[i]), pageBytes);
            }
        }
        return CompletableFuture.completedFuture(null);
    }

    @Override
    public void release(KvHandle handle) {
        if (!prefill.release(handle.leaseId())) {
            LOG.warn("prefill command queue full; lease {} will be freed when it expires", handle.leaseId());
        }
    }
}
