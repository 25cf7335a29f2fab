package io.tandem.prefill;

import io.tandem.engine.PrefillEngine;
import io.tandem.kvcache.KvCacheStorage;
import io.tandem.kvcache.LayerProgress;
import io.tandem.kvcache.transfer.KvPageProvider;
import io.tandem.kvcache.transfer.KvPageServer;
import io.tandem.kvcache.transfer.KvTransferStatus;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
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
    private final Duration serveDelay;

    /**
     * @param serveDelay how long each pull is held before its lease is checked and its pages sent
     *                   ({@code --kv-serve-delay}, a test-only throttle that makes a pull stay in
     *                   flight long enough to fault it); {@link Duration#ZERO} = none
     */
    PrefillPageProvider(PrefillEngine engine, Duration serveDelay) {
        this.engine = engine;
        this.serveDelay = serveDelay;
    }

    @Override
    public KvCacheStorage storage() {
        return engine.storage();
    }

    /**
     * Answers from the engine's concurrent view of live leases ({@link PrefillEngine#checkLeaseForPull}),
     * without waiting for the engine thread to end its current prefill step.
     */
    @Override
    public CompletionStage<KvTransferStatus> validate(long epoch, long leaseId, int[] blockIds) {
        CompletableFuture<KvTransferStatus> validated = new CompletableFuture<>();
        if (serveDelay.isZero()) {
            askEngine(epoch, leaseId, blockIds, validated);
        } else {
            CompletableFuture.delayedExecutor(serveDelay.toNanos(), TimeUnit.NANOSECONDS)
                    .execute(() -> askEngine(epoch, leaseId, blockIds, validated));
        }
        return validated;
    }

    private void askEngine(long epoch, long leaseId, int[] blockIds, CompletableFuture<KvTransferStatus> validated) {
        try {
            validated.complete(engine.checkLeaseForPull(epoch, leaseId, blockIds));
        } catch (RuntimeException e) {
            validated.completeExceptionally(e);
        }
    }

    /** Renews the lease if it is of this worker's epoch; a renewal the queue cannot take is dropped. */
    @Override
    public void renew(long epoch, long leaseId) {
        if (epoch == engine.epoch() && !engine.renew(leaseId, held -> { })) {
            LOG.warn("prefill worker {}: engine queue full or closed; lease {} not renewed", engine.workerId(), leaseId);
        }
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
