package io.tandem.prefill;

import io.tandem.engine.PrefillEngine;
import io.tandem.kvcache.KvCacheStorage;
import io.tandem.kvcache.LayerProgress;
import io.tandem.kvcache.transfer.KvPageProvider;
import io.tandem.kvcache.transfer.KvPageServer;
import io.tandem.kvcache.transfer.KvTransferStatus;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What a prefill worker's {@link KvPageServer} serves: the {@link PrefillEngine}'s KV memory, with
 * every lease question answered by the engine thread, which owns the leases. Called on Netty
 * threads; both methods only enqueue an engine command, so neither blocks.
 *
 * <p>A passed check keeps the lease for another lease timeout ({@link PrefillEngine#validateLease}),
 * so with the pullers' {@code kvTransferTimeout} below the lease timeout a block is never reused
 * while its pages are on the wire. The engine's storage outlives the page server (the worker closes
 * the server first).
 */
final class PrefillPageProvider implements KvPageProvider {
    private static final Logger LOG = LoggerFactory.getLogger(PrefillPageProvider.class);

    private final PrefillEngine engine;

    PrefillPageProvider(PrefillEngine engine) {
        this.engine = engine;
    }

    @Override
    public KvCacheStorage storage() {
        return engine.storage();
    }

    /**
     * Asks the engine thread; completes there. A full command queue (or a closed engine) fails the
     * stage, which the server sends as {@link KvTransferStatus#INTERNAL}.
     */
    @Override
    public CompletionStage<KvTransferStatus> validate(long epoch, long leaseId, int[] blockIds) {
        CompletableFuture<KvTransferStatus> validated = new CompletableFuture<>();
        if (!engine.validateLease(epoch, leaseId, blockIds, validated::complete)) {
            validated.completeExceptionally(new IllegalStateException(
                    "prefill worker " + engine.workerId() + ": engine queue is full or closed"));
        }
        return validated;
    }

    /** The engine's layer progress of the lease (read from a concurrent map; never blocks). */
    @Override
    public LayerProgress progress(long epoch, long leaseId) {
        return engine.progress(epoch, leaseId);
    }

    /** Frees the lease's blocks if it is of this worker's epoch; a release the queue cannot take is left to expire. */
    @Override
    public void release(long epoch, long leaseId) {
        if (epoch != engine.epoch()) {
            return;
        }
        if (!engine.release(leaseId)) {
            LOG.warn("prefill worker {}: engine queue full or closed; lease {} will expire", engine.workerId(), leaseId);
        }
    }
}
