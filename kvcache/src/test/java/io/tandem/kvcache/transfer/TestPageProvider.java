package io.tandem.kvcache.transfer;

import io.tandem.kvcache.KvCacheSpec;
import io.tandem.kvcache.KvCacheStorage;
import io.tandem.kvcache.KvHandle;
import io.tandem.kvcache.LayerProgress;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A prefill worker's side for data-plane tests: a storage of random bytes and a lease table.
 * Validation answers at once, on {@link #answerOn(Executor)} (like an engine thread), or never
 * ({@link #holdValidation()}). Every release call is recorded; a lease is freed by the first one.
 */
final class TestPageProvider implements KvPageProvider, AutoCloseable {
    final String workerId;
    final long epoch;
    private final KvCacheStorage storage;
    private final Map<Long, int[]> leases = new ConcurrentHashMap<>();
    private final AtomicLong nextLease = new AtomicLong(100);
    /** Every release call, as {@code leaseId}. */
    final List<Long> releaseCalls = new CopyOnWriteArrayList<>();
    /** Every renew call, as {@code leaseId}. */
    final List<Long> renewCalls = new CopyOnWriteArrayList<>();
    /** Leases freed by a release, in order. */
    final List<Long> freed = new CopyOnWriteArrayList<>();
    /** Validations held by {@link #holdValidation()}, never completed unless a test does. */
    final List<CompletableFuture<KvTransferStatus>> held = new CopyOnWriteArrayList<>();
    private volatile boolean hold;
    private volatile Executor answerOn;
    /** What {@link #progress} answers for every lease; finished unless a test sets one. */
    volatile LayerProgress progress = LayerProgress.finished();

    TestPageProvider(String workerId, long epoch, KvCacheSpec spec, int numBlocks, long seed) {
        this.workerId = workerId;
        this.epoch = epoch;
        this.storage = new KvCacheStorage(spec, numBlocks);
        fillRandom(storage, seed);
    }

    /** Grants a lease on {@code blockIds} and returns its handle (all tokens of those blocks). */
    KvHandle lease(int... blockIds) {
        long leaseId = nextLease.getAndIncrement();
        leases.put(leaseId, blockIds.clone());
        KvCacheSpec spec = storage.spec();
        return new KvHandle(workerId, epoch, leaseId, blockIds, blockIds.length * spec.blockSize(), spec);
    }

    /** From now on, validations never answer. */
    void holdValidation() {
        hold = true;
    }

    /** From now on, validations answer on {@code executor}. */
    void answerOn(Executor executor) {
        answerOn = executor;
    }

    @Override
    public KvCacheStorage storage() {
        return storage;
    }

    @Override
    public CompletionStage<KvTransferStatus> validate(long epoch, long leaseId, int[] blockIds) {
        if (hold) {
            CompletableFuture<KvTransferStatus> never = new CompletableFuture<>();
            held.add(never);
            return never;
        }
        Executor executor = answerOn;
        return executor == null ? CompletableFuture.completedFuture(check(epoch, leaseId, blockIds))
                : CompletableFuture.supplyAsync(() -> check(epoch, leaseId, blockIds), executor);
    }

    private KvTransferStatus check(long epoch, long leaseId, int[] blockIds) {
        if (epoch != this.epoch) {
            return KvTransferStatus.STALE_EPOCH;
        }
        int[] held = leases.get(leaseId);
        if (held == null) {
            return KvTransferStatus.UNKNOWN_LEASE;
        }
        for (int blockId : blockIds) {
            if (java.util.Arrays.stream(held).noneMatch(b -> b == blockId)) {
                return KvTransferStatus.BAD_BLOCK_ID;
            }
        }
        return KvTransferStatus.OK;
    }

    @Override
    public void release(long epoch, long leaseId) {
        releaseCalls.add(leaseId);
        if (epoch == this.epoch && leases.remove(leaseId) != null) {
            freed.add(leaseId);
        }
    }

    @Override
    public LayerProgress progress(long epoch, long leaseId) {
        return progress;
    }

    @Override
    public void renew(long epoch, long leaseId) {
        renewCalls.add(leaseId);
    }

    @Override
    public void close() {
        storage.close();
    }

    /** Fills every layer with random bytes from {@code seed}. */
    static void fillRandom(KvCacheStorage storage, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        for (int layer = 0; layer < storage.spec().numLayers(); layer++) {
            MemorySegment segment = storage.layer(layer);
            for (long at = 0; at + 8 <= segment.byteSize(); at += 8) {
                segment.set(ValueLayout.JAVA_LONG_UNALIGNED, at, random.nextLong());
            }
        }
    }
}
