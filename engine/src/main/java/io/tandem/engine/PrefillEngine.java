package io.tandem.engine;

import io.tandem.engine.backend.Backend;
import io.tandem.engine.model.ForwardBatch;
import io.tandem.engine.model.LlamaModel;
import io.tandem.engine.model.ModelRunner;
import io.tandem.engine.sampling.Sampler;
import io.tandem.kvcache.BlockHasher;
import io.tandem.kvcache.BlockPool;
import io.tandem.kvcache.CachedBlockHashes;
import io.tandem.kvcache.KvCacheManager;
import io.tandem.kvcache.KvCacheSpec;
import io.tandem.kvcache.KvCacheStorage;
import io.tandem.kvcache.KvHandle;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;
import io.tandem.kvcache.transfer.KvTransferStatus;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import java.util.function.Consumer;

/**
 * The prefill side (DESIGN.md §2): computes prompts' K/V into its block pool with chunked prefill
 * under a token budget (several prompts per step, vLLM's {@code max_num_batched_tokens}), computing
 * only what the prefix cache does not already hold, samples each prompt's first token, and exports
 * the blocks as a {@link KvHandle} under a lease until the decode side releases them or the lease
 * expires. Released blocks stay in the prefix cache until evicted.
 *
 * <p>All state is owned by the engine thread; {@link #submit}, {@link #cancel}, {@link #release},
 * {@link #renew} and {@link #validateLease} only enqueue commands. {@link #copyLeasedPages} reads
 * exported pages on the caller's thread, checking the lease around the copy.
 */
public final class PrefillEngine extends EngineLoop<PrefillEngine.Command> {
    /** Commands other threads send to the engine thread. */
    sealed interface Command permits Submit, Cancel, Release, Renew, ValidateLease {}

    record Submit(PrefillRequest request, PrefillCallback callback, long enqueuedNanos) implements Command {}

    record Cancel(String requestId) implements Command {}

    record Release(long leaseId) implements Command {}

    record Renew(long leaseId, Consumer<Boolean> onRenewed) implements Command {}

    record ValidateLease(long epoch, long leaseId, int[] blockIds, Consumer<KvTransferStatus> onValidated)
            implements Command {}

    private record Pending(Sequence seq, PrefillCallback callback, long enqueuedNanos, long[] startNanos) {}

    private record Lease(Sequence seq, long deadlineNanos) {}

    private static final Logger LOG = LoggerFactory.getLogger(PrefillEngine.class);

    private final String workerId;
    private final long epoch;
    private final EngineConfig config;
    private final KvCacheSpec spec;
    private final KvCacheStorage storage;
    private final KvCacheManager kvCache;
    private final BlockHasher hasher;
    private final ModelRunner runner;
    private final Sampler sampler;
    private final ForwardBatch batch;
    private final ArrayDeque<Pending> waiting = new ArrayDeque<>();
    private final List<Pending> scheduled = new ArrayList<>();
    private final Map<Long, Lease> leases = new HashMap<>();
    /**
     * The block ids of every live lease, for readers on other threads ({@link #copyLeasedPages}).
     * Written by the engine thread only: a lease is put here before its handle is handed out and
     * removed before its blocks are freed, so while it is here its blocks hold its KV.
     */
    private final ConcurrentHashMap<Long, int[]> liveLeaseBlocks = new ConcurrentHashMap<>();
    private long nextLeaseId = 1;
    private volatile EngineStats stats;
    /** The last published prefix-cache snapshot and the pool version it was taken at. */
    private CachedBlockHashes cachedBlockHashes = CachedBlockHashes.NONE;
    private long cachedBlockHashesVersion = -1;
    private final long[] cachedBlockHashesScratch = new long[CachedBlockHashes.MAX_HASHES];

    /**
     * Allocates the KV cache and starts the engine thread.
     *
     * @param workerId id put in every exported handle
     */
    public PrefillEngine(String workerId, LlamaModel model, Backend backend, EngineConfig config) {
        super("prefill", config.queueCapacity());
        this.workerId = workerId;
        this.epoch = System.currentTimeMillis();
        this.config = config;
        var mc = model.config();
        this.spec = new KvCacheSpec(mc.numLayers(), mc.numKvHeads(), mc.headDim(), config.blockSize(), config.kvDtype());
        int numBlocks = config.numKvBlocks(spec, mc.contextLength());
        this.storage = new KvCacheStorage(spec, numBlocks);
        this.kvCache = new KvCacheManager(new BlockPool(numBlocks, config.enablePrefixCaching()), config.blockSize());
        this.hasher = new BlockHasher(config.blockSize(), model.id());
        this.runner = new ModelRunner(model, backend, storage, config.maxNumBatchedTokens(), config.maxNumSeqs());
        this.sampler = new Sampler(mc.vocabSize());
        this.batch = new ForwardBatch(config.maxNumBatchedTokens(), config.maxNumSeqs());
        publishStats();
        start();
    }

    /** The KV memory; the in-process transport reads exported pages from it. */
    public KvCacheStorage storage() {
        return storage;
    }

    public String workerId() {
        return workerId;
    }

    public long epoch() {
        return epoch;
    }

    /** The latest load snapshot. */
    public EngineStats stats() {
        return stats;
    }

    /** Queues a prompt; {@code false} if the command queue is full. */
    public boolean submit(PrefillRequest request, PrefillCallback callback) {
        return enqueue(new Submit(request, callback, System.nanoTime()));
    }

    /** Drops a queued or running prefill; its callback gets {@link CancellationException}. */
    public boolean cancel(String requestId) {
        return enqueue(new Cancel(requestId));
    }

    /** Frees the blocks of an exported handle. Idempotent. */
    public boolean release(long leaseId) {
        return enqueue(new Release(leaseId));
    }

    /**
     * Pushes a lease's deadline to now + {@link EngineConfig#leaseTimeout()}, so a decode worker
     * still pulling the handle's pages keeps them.
     *
     * @param onRenewed called once on the engine thread (must not block) with {@code true} if the
     *                  lease was held and is renewed, {@code false} if it is unknown: released,
     *                  expired, or never granted
     * @return {@code false} if the command queue is full; {@code onRenewed} is then never called
     */
    public boolean renew(long leaseId, Consumer<Boolean> onRenewed) {
        return enqueue(new Renew(leaseId, onRenewed));
    }

    /**
     * Copies every page {@code (layer, handle.blockIds()[i])} into {@code (layer, dstBlockIds[i])} of
     * {@code dst} on the calling thread: the in-process KV hand-off. The lease must be held before
     * and still after the copy (an optimistic read, as {@link java.util.concurrent.locks.StampedLock}
     * validates one): a lease released or expired meanwhile may have had its blocks handed to another
     * prompt, so the copy is refused rather than returned. Thread-safe.
     *
     * @throws IllegalStateException if the lease is not held, or the engine's KV memory is closed
     */
    public void copyLeasedPages(KvHandle handle, KvCacheStorage dst, int[] dstBlockIds) {
        int[] blocks = liveLeaseBlocks.get(handle.leaseId());
        if (blocks == null || !Arrays.equals(blocks, handle.blockIds())) {
            throw leaseNotHeld(handle);
        }
        long pageBytes = spec.pageBytes();
        for (int layer = 0; layer < spec.numLayers(); layer++) {
            MemorySegment from = storage.layer(layer);
            MemorySegment to = dst.layer(layer);
            for (int i = 0; i < dstBlockIds.length; i++) {
                MemorySegment.copy(from, storage.pageOffset(blocks[i]), to, dst.pageOffset(dstBlockIds[i]), pageBytes);
            }
        }
        VarHandle.acquireFence(); // the copy's reads happen before the re-check
        if (liveLeaseBlocks.get(handle.leaseId()) != blocks) {
            throw leaseNotHeld(handle);
        }
    }

    private IllegalStateException leaseNotHeld(KvHandle handle) {
        return new IllegalStateException("lease " + handle.leaseId() + " of prefill worker " + workerId
                + " is not held (released or expired): its KV blocks may hold another prompt");
    }

    /**
     * Checks, for the KV data plane, that lease {@code leaseId} of epoch {@code epoch} is held and
     * covers every one of {@code blockIds}; if so its deadline is pushed to at least now +
     * {@link EngineConfig#leaseTimeout()}, so that pages served after this check are not freed
     * while a puller (whose transfer timeout is shorter than the lease timeout) reads them.
     *
     * @param onValidated called once on the engine thread (must not block) with
     *                    {@link KvTransferStatus#OK}, {@link KvTransferStatus#STALE_EPOCH} (another
     *                    epoch than {@link #epoch()}), {@link KvTransferStatus#UNKNOWN_LEASE}
     *                    (released, expired or never granted) or {@link KvTransferStatus#BAD_BLOCK_ID}
     *                    (a block the lease does not hold)
     * @return {@code false} if the command queue is full or the engine is closed; {@code
     *         onValidated} is then never called (nor is it for a command still queued at close)
     */
    public boolean validateLease(long epoch, long leaseId, int[] blockIds, Consumer<KvTransferStatus> onValidated) {
        return enqueue(new ValidateLease(epoch, leaseId, blockIds, onValidated));
    }

    @Override
    protected void onCommand(Command command) {
        switch (command) {
            case Submit s -> admit(s);
            case Cancel c -> cancelNow(c.requestId());
            case Release r -> releaseNow(r.leaseId());
            case Renew r -> renewNow(r);
            case ValidateLease v -> v.onValidated().accept(validateNow(v));
        }
    }

    private void admit(Submit s) {
        PrefillRequest r = s.request();
        int n = r.promptTokenIds().length;
        if (spec.blocksFor(n) > kvCache.numBlocks()) {
            fail(s.callback(), new IllegalArgumentException("prompt of " + n + " tokens needs more KV blocks than the prefill worker has ("
                    + kvCache.numBlocks() + ")"));
            return;
        }
        Sequence seq = new Sequence(r.requestId(), r.promptTokenIds(), n, r.sampling(), r.seed(), n, spec.blockSize());
        long[] hashes = new long[n / spec.blockSize()];
        seq.setBlockHashes(hashes, hasher.hashFullBlocks(seq.tokens(), n, hasher.extraHash(r.cacheSalt()), hashes));
        waiting.add(new Pending(seq, s.callback(), s.enqueuedNanos(), new long[1]));
    }

    private void cancelNow(String requestId) {
        for (Iterator<Pending> it = waiting.iterator(); it.hasNext(); ) {
            Pending p = it.next();
            if (p.seq().requestId().equals(requestId)) {
                it.remove();
                freeBlocks(p.seq());
                fail(p.callback(), new CancellationException("request " + requestId + " cancelled"));
            }
        }
    }

    private void releaseNow(long leaseId) {
        Lease lease = leases.remove(leaseId);
        if (lease != null) {
            liveLeaseBlocks.remove(leaseId);
            freeBlocks(lease.seq());
        }
    }

    private void renewNow(Renew r) {
        Lease lease = leases.get(r.leaseId());
        if (lease != null) {
            leases.put(r.leaseId(), new Lease(lease.seq(), System.nanoTime() + config.leaseTimeout().toNanos()));
        }
        r.onRenewed().accept(lease != null);
    }

    private KvTransferStatus validateNow(ValidateLease v) {
        if (v.epoch() != epoch) {
            return KvTransferStatus.STALE_EPOCH;
        }
        Lease lease = leases.get(v.leaseId());
        if (lease == null) {
            return KvTransferStatus.UNKNOWN_LEASE;
        }
        int[] held = lease.seq().blockTable().toArray();
        Arrays.sort(held);
        for (int blockId : v.blockIds()) {
            if (Arrays.binarySearch(held, blockId) < 0) {
                return KvTransferStatus.BAD_BLOCK_ID;
            }
        }
        long deadline = System.nanoTime() + config.leaseTimeout().toNanos();
        if (deadline - lease.deadlineNanos() > 0) {
            leases.put(v.leaseId(), new Lease(lease.seq(), deadline));
        }
        return KvTransferStatus.OK;
    }

    @Override
    protected int step() {
        int work = expireLeases();
        if (!waiting.isEmpty()) {
            work += runPrefillStep();
        }
        return work;
    }

    /** Schedules chunks of waiting prompts in arrival order under the token budget and runs them. */
    private int runPrefillStep() {
        batch.clear();
        scheduled.clear();
        for (Pending p : waiting) {
            Sequence seq = p.seq();
            if (batch.remainingTokens() == 0 || !batch.hasRoomForSequence()) {
                break;
            }
            if (seq.blockTable().numBlocks() == 0 && !allocatePromptBlocks(seq)) {
                break; // keep arrival order: later prompts wait for blocks too
            }
            if (seq.numComputedTokens() == seq.numTokens()) {
                continue; // unreachable: the cache never covers the last prompt token
            }
            int start = seq.numComputedTokens();
            int chunk = Math.min(seq.numTokens() - start, batch.remainingTokens());
            boolean last = start + chunk == seq.numTokens();
            batch.addSequence(seq.tokens(), start, chunk, start, seq.blockTable(), last);
            if (p.startNanos()[0] == 0) {
                p.startNanos()[0] = System.nanoTime();
            }
            scheduled.add(p);
        }
        if (scheduled.isEmpty()) {
            return 0;
        }
        float[] logits;
        try {
            logits = runner.forward(batch);
        } catch (RuntimeException e) {
            for (Pending p : scheduled) {
                waiting.remove(p);
                freeBlocks(p.seq());
                fail(p.callback(), e);
            }
            return scheduled.size();
        }
        int vocab = runner.config().vocabSize();
        for (int i = 0; i < scheduled.size(); i++) {
            Pending p = scheduled.get(i);
            Sequence seq = p.seq();
            seq.setNumComputedTokens(seq.numComputedTokens() + batch.seqStart(i + 1) - batch.seqStart(i));
            int full = Math.min(seq.numComputedTokens() / spec.blockSize(), seq.numHashedBlocks());
            kvCache.cacheFullBlocks(seq.blockTable(), seq.blockHashes(), seq.numCachedBlocks(), full);
            seq.setNumCachedBlocks(full);
            if (seq.numComputedTokens() == seq.numTokens()) {
                int row = runner.logitRow(i);
                int first = sampler.sample(logits, row * vocab, seq.sampling(), seq.seed(), 0);
                waiting.remove(p);
                export(p, first);
            }
        }
        return scheduled.size();
    }

    /** Takes the cached prefix, then blocks for the rest of the prompt; all or nothing. */
    private boolean allocatePromptBlocks(Sequence seq) {
        int computed = kvCache.allocateComputedBlocks(seq.blockHashes(), seq.numHashedBlocks(), seq.numTokens(),
                seq.blockTable());
        if (!kvCache.allocateSlots(seq.blockTable(), seq.numTokens())) {
            kvCache.free(seq.blockTable());
            return false;
        }
        kvCache.recordPrefixCacheQuery(seq.numTokens(), computed);
        seq.setNumComputedTokens(computed);
        seq.setNumCachedBlocks(computed / spec.blockSize());
        return true;
    }

    private void export(Pending p, int firstToken) {
        Sequence seq = p.seq();
        seq.setStatus(SequenceStatus.EXPORTED);
        long leaseId = nextLeaseId++;
        long now = System.nanoTime();
        leases.put(leaseId, new Lease(seq, now + config.leaseTimeout().toNanos()));
        KvHandle handle = new KvHandle(workerId, epoch, leaseId, seq.blockTable().toArray(), seq.numTokens(), spec);
        liveLeaseBlocks.put(leaseId, handle.blockIds());
        long start = p.startNanos()[0];
        PrefillResult result = new PrefillResult(seq.requestId(), firstToken, handle, start - p.enqueuedNanos(), now - start);
        try {
            p.callback().onPrefilled(result);
        } catch (RuntimeException e) {
            // The handle may have been passed on before the throw: its lease is left to expire.
            LOG.error("prefill callback of {} threw from onPrefilled", seq.requestId(), e);
        }
    }

    private int expireLeases() {
        if (leases.isEmpty()) {
            return 0;
        }
        long now = System.nanoTime();
        int expired = 0;
        for (Iterator<Map.Entry<Long, Lease>> it = leases.entrySet().iterator(); it.hasNext(); ) {
            Map.Entry<Long, Lease> entry = it.next();
            Lease lease = entry.getValue();
            if (now - lease.deadlineNanos() > 0) {
                it.remove();
                liveLeaseBlocks.remove(entry.getKey());
                freeBlocks(lease.seq());
                expired++;
            }
        }
        return expired;
    }

    /** Tells a callback its prefill failed; one that throws is logged so the others are still told. */
    private static void fail(PrefillCallback callback, Throwable error) {
        try {
            callback.onFailed(error);
        } catch (RuntimeException e) {
            LOG.error("prefill callback threw from onFailed({})", error, e);
        }
    }

    private void freeBlocks(Sequence seq) {
        kvCache.free(seq.blockTable());
        seq.setStatus(SequenceStatus.FINISHED);
    }

    /**
     * Running: prompts part-way through a chunked prefill; waiting: prompts not started. A prompt
     * computed to its end is exported in the same step, so it counts only under {@code numExported}.
     * Queued prefill tokens: prompt tokens of both not computed yet (a prompt not yet given blocks
     * counts in full; its cached prefix is only known once it is).
     */
    @Override
    protected void publishStats() {
        int running = 0;
        long queuedTokens = 0;
        for (Pending p : waiting) {
            if (p.startNanos()[0] != 0) {
                running++;
            }
            queuedTokens += p.seq().numTokens() - p.seq().numComputedTokens();
        }
        stats = new EngineStats(running, waiting.size() - running, leases.size(), kvCache.numFreeBlocks(),
                kvCache.numBlocks(), kvCache.prefixCacheQueries(), kvCache.prefixCacheHits(), 0, queuedTokens,
                cachedBlockHashes());
    }

    /** The prefix cache's hashes, taken anew only when a block was cached or evicted since the last snapshot. */
    private CachedBlockHashes cachedBlockHashes() {
        BlockPool pool = kvCache.blockPool();
        if (pool.prefixCacheVersion() != cachedBlockHashesVersion) {
            int n = pool.cachedBlockHashes(cachedBlockHashesScratch);
            cachedBlockHashes = new CachedBlockHashes(config.blockSize(), java.util.Arrays.copyOf(cachedBlockHashesScratch, n));
            cachedBlockHashesVersion = pool.prefixCacheVersion();
        }
        return cachedBlockHashes;
    }

    @Override
    protected void shutDown() {
        for (Pending p : waiting) {
            freeBlocks(p.seq());
            fail(p.callback(), new CancellationException("prefill engine shut down"));
        }
        waiting.clear();
        liveLeaseBlocks.clear();
        for (Lease lease : leases.values()) {
            freeBlocks(lease.seq());
        }
        leases.clear();
        publishStats();
        storage.close();
    }
}
