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
import io.tandem.kvcache.LayerProgress;
import io.tandem.kvcache.PageSummaries;
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
 * <p>Early handles: a request with {@link PrefillRequest#earlyHandle()} gets its handle (lease taken)
 * as soon as its blocks are allocated, and its {@link LayerProgress} advances layer by layer as
 * each chunk's K/V are written ({@link #progress}), so the KV data plane sends finished pages while
 * later layers and chunks compute. Such a lease does not expire while its prefill computes; if the
 * prefill ends early (cancelled, failed, released, shut down) the lease ends with it and its
 * progress fails, which ends the pulls waiting for its pages.
 *
 * <p>Page summaries: at export, unless turned off, the handle gets the Quest summaries of the
 * prompt's keys ({@link PageSummaries}: per page and KV head the element-wise min and max of K),
 * computed on the engine thread from the final K of every block, cached prefix included, one read
 * of the prompt's keys. An early handle goes out before its keys exist, without them; the handle of
 * its {@link PrefillResult} has them.
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

    /** A prompt being prefilled. */
    private static final class Pending {
        final Sequence seq;
        final PrefillCallback callback;
        final boolean earlyHandle;
        final long enqueuedNanos;
        long startNanos;
        /** Set when an early handle is given out. */
        long leaseId = NO_LEASE;
        KvHandle handle;
        LayerProgress progress;

        Pending(Sequence seq, PrefillCallback callback, boolean earlyHandle, long enqueuedNanos) {
            this.seq = seq;
            this.callback = callback;
            this.earlyHandle = earlyHandle;
            this.enqueuedNanos = enqueuedNanos;
        }
    }

    /** A lease; {@code deadlineNanos} counts only once its prefill is exported. */
    private record Lease(Pending pending, long deadlineNanos) {
        Sequence seq() {
            return pending.seq;
        }
    }

    private static final long NO_LEASE = 0;

    private static final Logger LOG = LoggerFactory.getLogger(PrefillEngine.class);

    private final String workerId;
    private final long epoch;
    private final EngineConfig config;
    private final KvCacheSpec spec;
    private final KvCacheStorage storage;
    private final KvCacheManager kvCache;
    private final BlockHasher hasher;
    private final ModelRunner runner;
    /** Whether exported handles carry {@link PageSummaries}. */
    private final boolean pageSummaries;
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
    /** The progress of every live lease, for the KV data plane ({@link #progress}); same life as {@link #liveLeaseBlocks}. */
    private final ConcurrentHashMap<Long, LayerProgress> liveLeaseProgress = new ConcurrentHashMap<>();
    /** Publishes each written layer of the scheduled prompts with early handles; made once (no allocation per step). */
    private final ModelRunner.KvWriteListener layerWritten = this::publishLayer;
    private long nextLeaseId = 1;
    // Lease events (cumulative), written by the engine thread only.
    private volatile long numLeasesGranted;
    private volatile long numLeasesReleased;
    private volatile long numLeasesExpired;
    private volatile long numLeasesRenewed;
    private volatile boolean schedulingPaused;
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
        this(workerId, model, backend, config, true);
    }

    /**
     * Allocates the KV cache and starts the engine thread.
     *
     * @param workerId      id put in every exported handle
     * @param pageSummaries whether exported handles carry the {@link PageSummaries} of their pages
     *                      ({@code --kv-page-summaries}); a prompt whose summaries would exceed
     *                      {@link PageSummaries#MAX_BYTES} gets none either way
     */
    public PrefillEngine(String workerId, LlamaModel model, Backend backend, EngineConfig config, boolean pageSummaries) {
        super("prefill", config.queueCapacity());
        this.pageSummaries = pageSummaries;
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
        if (pageSummaries && PageSummaries.maxTokens(spec) < mc.contextLength()) {
            LOG.warn("prefill worker {}: prompts over {} tokens get no KV page summaries (they would exceed {} MiB)",
                    workerId, PageSummaries.maxTokens(spec), PageSummaries.MAX_BYTES >> 20);
        }
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

    /** Whether exported handles carry page summaries. */
    public boolean pageSummaries() {
        return pageSummaries;
    }

    /** The latest load snapshot. */
    public EngineStats stats() {
        return stats;
    }

    /** Leases granted: every exported handle (cumulative). */
    public long numLeasesGranted() {
        return numLeasesGranted;
    }

    /** Leases ended by a release (cumulative; a release of a lease not held does not count). */
    public long numLeasesReleased() {
        return numLeasesReleased;
    }

    /** Leases ended because their deadline passed unreleased, their blocks freed (cumulative). */
    public long numLeasesExpired() {
        return numLeasesExpired;
    }

    /** Renewals of a held lease ({@link #renew}; a data-plane pull's own extension does not count). */
    public long numLeasesRenewed() {
        return numLeasesRenewed;
    }

    /**
     * Holds every prefill between steps (the engine thread still applies commands: lease checks,
     * releases, cancels, expiry) until {@link #resumeScheduling}; a step already running finishes.
     * For drains and tests that need a prefill caught half-way.
     */
    public void pauseScheduling() {
        schedulingPaused = true;
    }

    /** Lets prefills step again after {@link #pauseScheduling}. */
    public void resumeScheduling() {
        schedulingPaused = false;
    }

    /**
     * How far lease {@code leaseId}'s pages are computed, for the KV data plane; thread-safe, never
     * blocks. A lease exported at its prefill's end has a finished progress.
     *
     * @return the lease's progress, or {@code null} for another epoch or a lease not held
     */
    public LayerProgress progress(long epoch, long leaseId) {
        return epoch == this.epoch ? liveLeaseProgress.get(leaseId) : null;
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
     * @throws IllegalStateException if the lease is not held, its prefill still computes (an early
     *                               handle), or the engine's KV memory is closed
     */
    public void copyLeasedPages(KvHandle handle, KvCacheStorage dst, int[] dstBlockIds) {
        int[] blocks = liveLeaseBlocks.get(handle.leaseId());
        if (blocks == null || !Arrays.equals(blocks, handle.blockIds())) {
            throw leaseNotHeld(handle);
        }
        LayerProgress progress = liveLeaseProgress.get(handle.leaseId());
        if (progress == null || !progress.isFinished()) {
            throw new IllegalStateException("lease " + handle.leaseId() + " of prefill worker " + workerId
                    + " is still being prefilled: its pages are not final");
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

    /**
     * The same check as {@link #validateLease}, answered at once on the calling thread from the
     * data plane's view of live leases, so that a pull never waits for the engine thread to finish
     * a prefill step (a step of a few hundred tokens of a 1B model takes seconds on a CPU; a pull
     * of a prompt in that very step would otherwise see its first page only after the step). The
     * lease's deadline is then pushed back on the engine thread, between steps and so before the
     * next expiry check. Thread-safe; never blocks.
     *
     * @return {@link KvTransferStatus#OK}, {@link KvTransferStatus#STALE_EPOCH},
     *         {@link KvTransferStatus#UNKNOWN_LEASE} or {@link KvTransferStatus#BAD_BLOCK_ID}, as
     *         {@link #validateLease} would
     */
    public KvTransferStatus checkLeaseForPull(long epoch, long leaseId, int[] blockIds) {
        if (epoch != this.epoch) {
            return KvTransferStatus.STALE_EPOCH;
        }
        int[] held = liveLeaseBlocks.get(leaseId);
        if (held == null) {
            return KvTransferStatus.UNKNOWN_LEASE;
        }
        for (int blockId : blockIds) {
            boolean found = false;
            for (int h : held) {
                if (h == blockId) {
                    found = true;
                    break;
                }
            }
            if (!found) {
                return KvTransferStatus.BAD_BLOCK_ID;
            }
        }
        if (!enqueue(new ValidateLease(epoch, leaseId, blockIds, ignored -> { }))) {
            LOG.warn("prefill worker {}: engine queue full or closed; lease {} not extended for its pull (its holder's "
                    + "renewals still keep it)", workerId, leaseId);
        }
        return KvTransferStatus.OK;
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
        waiting.add(new Pending(seq, s.callback(), r.earlyHandle(), s.enqueuedNanos()));
    }

    private void cancelNow(String requestId) {
        for (Iterator<Pending> it = waiting.iterator(); it.hasNext(); ) {
            Pending p = it.next();
            if (p.seq.requestId().equals(requestId)) {
                it.remove();
                drop(p, new CancellationException("request " + requestId + " cancelled"));
            }
        }
    }

    /** Frees a lease's blocks; a lease whose prefill still computes (an early handle) cancels that prefill. */
    private void releaseNow(long leaseId) {
        Lease lease = leases.get(leaseId);
        if (lease == null) {
            return;
        }
        Pending p = lease.pending();
        if (p.seq.status() != SequenceStatus.EXPORTED) {
            waiting.remove(p);
            drop(p, new CancellationException("lease " + leaseId + " of request " + p.seq.requestId()
                    + " released before its prefill finished"));
            return;
        }
        endLease(leaseId);
        freeBlocks(lease.seq());
        numLeasesReleased++;
    }

    /** Forgets a lease, for the data plane first (so no page of it is served once its blocks are freed). */
    private void endLease(long leaseId) {
        liveLeaseBlocks.remove(leaseId);
        liveLeaseProgress.remove(leaseId);
        leases.remove(leaseId);
    }

    /**
     * Ends a prompt that did not finish (already out of {@link #waiting}): its early lease and
     * progress end, so pulls waiting for its pages fail, then its blocks are freed and its callback
     * told.
     */
    private void drop(Pending p, Throwable error) {
        if (p.leaseId != NO_LEASE) {
            endLease(p.leaseId);
            p.progress.fail();
        }
        freeBlocks(p.seq);
        fail(p.callback, error);
    }

    private void renewNow(Renew r) {
        Lease lease = leases.get(r.leaseId());
        if (lease != null) {
            leases.put(r.leaseId(), new Lease(lease.pending(), System.nanoTime() + config.leaseTimeout().toNanos()));
            numLeasesRenewed++;
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
            leases.put(v.leaseId(), new Lease(lease.pending(), deadline));
        }
        return KvTransferStatus.OK;
    }

    @Override
    protected int step() {
        int work = expireLeases();
        if (!waiting.isEmpty() && !schedulingPaused) {
            work += runPrefillStep();
        }
        return work;
    }

    /** Schedules chunks of waiting prompts in arrival order under the token budget and runs them. */
    private int runPrefillStep() {
        batch.clear();
        scheduled.clear();
        for (Pending p : waiting) {
            Sequence seq = p.seq;
            if (batch.remainingTokens() == 0 || !batch.hasRoomForSequence()) {
                break;
            }
            if (seq.blockTable().numBlocks() == 0) {
                if (!allocatePromptBlocks(seq)) {
                    break; // keep arrival order: later prompts wait for blocks too
                }
                if (p.earlyHandle) {
                    exportEarly(p);
                }
            }
            if (seq.numComputedTokens() == seq.numTokens()) {
                continue; // unreachable: the cache never covers the last prompt token
            }
            int start = seq.numComputedTokens();
            int chunk = Math.min(seq.numTokens() - start, batch.remainingTokens());
            boolean last = start + chunk == seq.numTokens();
            batch.addSequence(seq.tokens(), start, chunk, start, seq.blockTable(), last);
            if (p.startNanos == 0) {
                p.startNanos = System.nanoTime();
            }
            scheduled.add(p);
        }
        if (scheduled.isEmpty()) {
            return 0;
        }
        float[] logits;
        try {
            logits = runner.forward(batch, layerWritten);
        } catch (RuntimeException e) {
            for (Pending p : scheduled) {
                waiting.remove(p);
                drop(p, e);
            }
            return scheduled.size();
        }
        int vocab = runner.config().vocabSize();
        for (int i = 0; i < scheduled.size(); i++) {
            Pending p = scheduled.get(i);
            Sequence seq = p.seq;
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

    /**
     * Hands out the handle of a prompt whose blocks were just allocated, its lease held from now
     * on and its cached prefix already final.
     */
    private void exportEarly(Pending p) {
        Sequence seq = p.seq;
        p.leaseId = nextLeaseId++;
        p.handle = new KvHandle(workerId, epoch, p.leaseId, seq.blockTable().toArray(), seq.numTokens(), spec);
        p.progress = new LayerProgress(spec.numLayers(), p.handle.blockIds(), seq.numTokens(), spec.blockSize());
        p.progress.advanceAll(seq.numComputedTokens());
        leases.put(p.leaseId, new Lease(p, Long.MAX_VALUE));
        numLeasesGranted++;
        liveLeaseBlocks.put(p.leaseId, p.handle.blockIds());
        liveLeaseProgress.put(p.leaseId, p.progress);
        try {
            p.callback.onKvHandle(p.handle);
        } catch (RuntimeException e) {
            LOG.error("prefill callback of {} threw from onKvHandle", seq.requestId(), e);
        }
    }

    /** {@link ModelRunner.KvWriteListener}: the layer's K/V of every scheduled chunk are written. */
    private void publishLayer(int layer) {
        for (int i = 0; i < scheduled.size(); i++) {
            Pending p = scheduled.get(i);
            if (p.progress != null) {
                p.progress.advance(layer, p.seq.numComputedTokens() + batch.seqStart(i + 1) - batch.seqStart(i));
            }
        }
    }

    private void export(Pending p, int firstToken) {
        Sequence seq = p.seq;
        seq.setStatus(SequenceStatus.EXPORTED);
        PageSummaries summaries = summarize(seq); // before the clock: part of the prefill's compute time
        long now = System.nanoTime();
        KvHandle handle;
        if (p.leaseId != NO_LEASE) {
            handle = p.handle.withPageSummaries(summaries);
            leases.put(p.leaseId, new Lease(p, now + config.leaseTimeout().toNanos()));
            p.progress.finish();
        } else {
            long leaseId = nextLeaseId++;
            leases.put(leaseId, new Lease(p, now + config.leaseTimeout().toNanos()));
            numLeasesGranted++;
            handle = new KvHandle(workerId, epoch, leaseId, seq.blockTable().toArray(), seq.numTokens(), spec, summaries);
            liveLeaseBlocks.put(leaseId, handle.blockIds());
            liveLeaseProgress.put(leaseId, LayerProgress.finished());
        }
        long start = p.startNanos;
        PrefillResult result = new PrefillResult(seq.requestId(), firstToken, handle, start - p.enqueuedNanos, now - start);
        try {
            p.callback.onPrefilled(result);
        } catch (RuntimeException e) {
            // The handle may have been passed on before the throw: its lease is left to expire.
            LOG.error("prefill callback of {} threw from onPrefilled", seq.requestId(), e);
        }
    }

    /** The page summaries of a prompt whose K are all final, or null when off or too large. */
    private PageSummaries summarize(Sequence seq) {
        if (!pageSummaries || !PageSummaries.fits(spec, seq.numTokens())) {
            return null;
        }
        return PageSummaries.compute(storage, seq.blockTable().toArray(), seq.numTokens());
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
            // A lease whose prefill still computes starts its clock at export.
            if (lease.seq().status() == SequenceStatus.EXPORTED && now - lease.deadlineNanos() > 0) {
                it.remove();
                liveLeaseBlocks.remove(entry.getKey());
                liveLeaseProgress.remove(entry.getKey());
                freeBlocks(lease.seq());
                expired++;
            }
        }
        if (expired > 0) {
            numLeasesExpired += expired;
            LOG.info("prefill worker {}: {} KV lease(s) expired unreleased; their blocks are freed", workerId, expired);
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
            if (p.startNanos != 0) {
                running++;
            }
            queuedTokens += p.seq.numTokens() - p.seq.numComputedTokens();
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
            drop(p, new CancellationException("prefill engine shut down"));
        }
        waiting.clear();
        liveLeaseBlocks.clear();
        liveLeaseProgress.clear();
        for (Lease lease : leases.values()) {
            freeBlocks(lease.seq());
        }
        leases.clear();
        publishStats();
        storage.close();
    }
}
