package io.tandem.engine;

import io.tandem.engine.backend.Backend;
import io.tandem.engine.model.ForwardBatch;
import io.tandem.engine.model.LlamaModel;
import io.tandem.engine.model.ModelRunner;
import io.tandem.engine.sampling.Sampler;
import io.tandem.engine.tokenizer.Tokenizer;
import io.tandem.kvcache.BlockPool;
import io.tandem.kvcache.KvCacheManager;
import io.tandem.kvcache.KvCacheSpec;
import io.tandem.kvcache.KvCacheStorage;
import io.tandem.kvcache.KvHandle;
import io.tandem.kvcache.PageSummaries;
import io.tandem.kvcache.transfer.KvTransferException;
import io.tandem.kvcache.transfer.KvTransferStatus;
import io.tandem.kvcache.transfer.KvTransport;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The decode side (DESIGN.md §2): iteration-level continuous batching (Orca, OSDI'22) over many
 * sequences. A new sequence pulls its prompt's KV pages from the prefill worker through a
 * {@link KvTransport} while the others keep decoding; once its pages are in, it joins the next
 * step. Every step runs one forward pass with one token per running sequence (one pass over the
 * weights for the whole batch), samples, and streams each token to the sequence's
 * {@link TokenSink}.
 *
 * <p>Overlap with the prefill: a request may come with an early handle, while its prefill still
 * computes ({@link DecodeRequest#FIRST_TOKEN_PENDING}); its pull starts at once (the prefill
 * worker sends each page once final) and the sequence runs only once its pages are in and
 * {@link #provideFirstToken} has brought the prefill's token.
 *
 * <p>A failed pull ends the request or, with {@link KvLoadFailurePolicy#RECOMPUTE}, falls back to
 * computing the prompt's KV here.
 *
 * <p>Blocks are allocated as sequences grow. When none is free, the most recently admitted
 * sequence is preempted by recompute (vLLM v1): its blocks are freed and it waits at the head of
 * the queue; readmitted, it recomputes the KV of all its tokens here, in chunks under the token
 * budget that share the forward pass with the decode tokens, then resumes decoding.
 */
public final class DecodeEngine extends EngineLoop<DecodeEngine.Command> {
    /** Commands other threads send to the engine thread. */
    sealed interface Command permits Submit, Cancel, FirstToken {}

    record Submit(DecodeRequest request, TokenSink sink) implements Command {}

    record Cancel(String requestId) implements Command {}

    record FirstToken(String requestId, int token, PageSummaries pageSummaries) implements Command {}

    private static final class Running {
        final Sequence seq;
        final TokenSink sink;
        final DecodeRequest request;
        CompletableFuture<Void> pull;
        boolean handleReleased;
        /** How the sequence ends at the next reap (once its pull has settled): ABORT when cancelled,
         * STOP or LENGTH when the first token ends it; null while it goes on. */
        FinishReason endReason;
        /** The prefill's token is not known yet (an early handle). */
        boolean firstTokenPending;
        /**
         * The Quest summaries of the prompt's pages, kept for query-aware demand paging (DESIGN.md
         * §4; not read yet: every page is pulled), or null if the prefill worker sent none.
         */
        PageSummaries pageSummaries;

        Running(Sequence seq, TokenSink sink, DecodeRequest request) {
            this.seq = seq;
            this.sink = sink;
            this.request = request;
        }
    }

    private static final Logger LOG = LoggerFactory.getLogger(DecodeEngine.class);
    private final KvCacheSpec spec;
    private final KvCacheStorage storage;
    private final KvCacheManager kvCache;
    private final ModelRunner runner;
    private final Sampler sampler;
    private final ForwardBatch batch;
    private final KvTransport transport;
    /** {@link #renewWaitingLeases}: a third of the lease timeout. */
    private final long leaseRenewalIntervalNanos;
    private long lastLeaseRenewalNanos = System.nanoTime();
    private final Tokenizer tokenizer;
    private final int contextLength;
    private final int maxNumSeqs;
    private final int tokenBudget;
    private final KvLoadFailurePolicy kvLoadFailurePolicy;
    private final ArrayDeque<Running> waiting = new ArrayDeque<>();
    private final List<Running> running = new ArrayList<>();
    private final List<Running> stepSeqs = new ArrayList<>();
    private long numPreemptions;
    private volatile long numKvLoadRecomputes;
    private volatile long numPageSummariesReceived;
    private volatile EngineStats stats;

    /**
     * Allocates the KV cache and starts the engine thread.
     *
     * @param transport pulls prompt KV from prefill workers
     */
    public DecodeEngine(LlamaModel model, Backend backend, EngineConfig config, KvTransport transport) {
        super("decode", config.queueCapacity());
        var mc = model.config();
        this.spec = new KvCacheSpec(mc.numLayers(), mc.numKvHeads(), mc.headDim(), config.blockSize(), config.kvDtype());
        int numBlocks = config.numKvBlocks(spec, mc.contextLength());
        this.storage = new KvCacheStorage(spec, numBlocks);
        this.kvCache = new KvCacheManager(new BlockPool(numBlocks, false), config.blockSize());
        this.maxNumSeqs = config.maxNumSeqs();
        this.tokenBudget = config.maxNumBatchedTokens();
        this.kvLoadFailurePolicy = config.kvLoadFailurePolicy();
        this.runner = new ModelRunner(model, backend, storage, maxNumSeqs + tokenBudget, maxNumSeqs);
        this.sampler = new Sampler(mc.vocabSize());
        this.batch = new ForwardBatch(maxNumSeqs + tokenBudget, maxNumSeqs);
        this.transport = transport;
        this.leaseRenewalIntervalNanos = Math.max(1, config.leaseTimeout().toNanos() / 3);
        this.tokenizer = model.tokenizer();
        this.contextLength = mc.contextLength();
        publishStats();
        start();
    }

    public EngineStats stats() {
        return stats;
    }

    /** Sequences whose prompt KV was recomputed here after a failed pull (cumulative). */
    public long numKvLoadRecomputes() {
        return numKvLoadRecomputes;
    }

    /**
     * Sequences that came with the page summaries of their prompt, in their handle or with their
     * first token (cumulative).
     */
    public long numPageSummariesReceived() {
        return numPageSummariesReceived;
    }

    /** Queues a sequence to continue; {@code false} if the command queue is full. */
    public boolean submit(DecodeRequest request, TokenSink sink) {
        return enqueue(new Submit(request, sink));
    }

    /**
     * Brings the first token of a request submitted with {@link DecodeRequest#FIRST_TOKEN_PENDING};
     * ignored for a request that has ended or has its token.
     *
     * @param pageSummaries the summaries of the prompt's pages from the prefill's result (the early
     *                      handle has none), or null
     * @return {@code false} if the command queue is full
     */
    public boolean provideFirstToken(String requestId, int token, PageSummaries pageSummaries) {
        return enqueue(new FirstToken(requestId, token, pageSummaries));
    }

    /** Ends a sequence; its sink gets {@code onFinish(ABORT)} and its blocks are freed at the next step. */
    public boolean cancel(String requestId) {
        return enqueue(new Cancel(requestId));
    }

    @Override
    protected void onCommand(Command command) {
        switch (command) {
            case Submit s -> admit(s);
            case Cancel c -> markCancelled(c.requestId());
            case FirstToken f -> takeFirstToken(f);
        }
    }

    private void admit(Submit s) {
        DecodeRequest r = s.request();
        int promptLen = r.promptTokenIds().length;
        int maxLen = Math.min(contextLength, promptLen + r.sampling().maxTokens());
        int[] tokens = Arrays.copyOf(r.promptTokenIds(), promptLen + 1);
        tokens[promptLen] = r.firstToken();
        Sequence seq = new Sequence(r.requestId(), tokens, promptLen, r.sampling(), r.seed(), maxLen, spec.blockSize());
        Running run = new Running(seq, s.sink(), r);
        run.firstTokenPending = r.firstTokenPending();
        keepPageSummaries(run, r.kvHandle().pageSummaries());
        FinishReason ended = run.firstTokenPending ? null : finishReason(seq, r.firstToken());
        if (ended != null) {
            // The prefill's token already ends it (EOS, max_tokens 1, a full context): nothing to pull.
            finish(run, ended, null);
            return;
        }
        if (spec.blocksFor(maxLen) > kvCache.numBlocks()) {
            releaseHandle(run);
            tell(run, null, new IllegalStateException("sequence of up to " + maxLen + " tokens needs "
                    + spec.blocksFor(maxLen) + " KV blocks; the decode worker has " + kvCache.numBlocks()));
            return;
        }
        waiting.add(run);
    }

    private void markCancelled(String requestId) {
        for (Running r : waiting) {
            if (r.seq.requestId().equals(requestId)) {
                r.endReason = FinishReason.ABORT;
            }
        }
        for (Running r : running) {
            if (r.seq.requestId().equals(requestId)) {
                r.endReason = FinishReason.ABORT;
            }
        }
    }

    private void takeFirstToken(FirstToken f) {
        for (Running r : waiting) {
            if (r.seq.requestId().equals(f.requestId())) {
                keepPageSummaries(r, f.pageSummaries());
                setFirstToken(r, f.token());
            }
        }
        for (Running r : running) {
            if (r.seq.requestId().equals(f.requestId())) {
                keepPageSummaries(r, f.pageSummaries());
                setFirstToken(r, f.token());
            }
        }
    }

    /** Keeps a sequence's page summaries (the first that arrive; their geometry is the handle's). */
    private void keepPageSummaries(Running r, PageSummaries summaries) {
        if (summaries == null || r.pageSummaries != null) {
            return;
        }
        KvHandle handle = r.request.kvHandle();
        if (!summaries.matches(handle.spec(), handle.blockIds().length)) {
            LOG.warn("page summaries of {} do not match its KV handle; dropped", r.seq.requestId());
            return;
        }
        r.pageSummaries = summaries;
        numPageSummariesReceived++;
    }

    /** The token takes the slot after the prompt; one that ends the sequence ends it at the next reap. */
    private void setFirstToken(Running r, int token) {
        if (!r.firstTokenPending || r.endReason != null) {
            return;
        }
        r.firstTokenPending = false;
        r.seq.tokens()[r.seq.numPromptTokens()] = token;
        FinishReason ended = finishReason(r.seq, token);
        if (ended != null) {
            r.endReason = ended;
        } else if (r.seq.status() == SequenceStatus.WAITING && r.handleReleased
                && r.seq.numComputedTokens() == r.seq.numTokens() - 1) {
            r.seq.setStatus(SequenceStatus.RUNNING); // recomputed the prompt while the token was on its way
        }
    }

    @Override
    protected int step() {
        renewWaitingLeases();
        int work = reapCancelled() + finishPulls();
        batch.clear();
        stepSeqs.clear();
        int budget = scheduleRunning(tokenBudget);
        work += admitWaiting(budget);
        if (!stepSeqs.isEmpty()) {
            runStep();
            work += stepSeqs.size();
        }
        return work;
    }

    /**
     * Every third of the lease timeout, asks the owners of the handles of sequences still waiting
     * for admission (no pull yet) to keep their KV: a sequence can wait behind a full batch or a
     * full KV pool for longer than a lease. (A decode worker's transport also renews every handle
     * it holds; a duplicate renewal only pushes the same deadline.)
     */
    private void renewWaitingLeases() {
        long now = System.nanoTime();
        if (waiting.isEmpty() || now - lastLeaseRenewalNanos < leaseRenewalIntervalNanos) {
            return;
        }
        lastLeaseRenewalNanos = now;
        for (Running r : waiting) {
            if (!r.handleReleased && r.pull == null) {
                transport.renew(r.request.kvHandle());
            }
        }
    }

    /**
     * Adds one decode token per running sequence and recompute chunks of readmitted ones,
     * preempting from the back when blocks run out. Returns the token budget left.
     */
    private int scheduleRunning(int budget) {
        for (int i = 0; i < running.size(); i++) {
            Running r = running.get(i);
            Sequence seq = r.seq;
            if (seq.status() == SequenceStatus.RUNNING) {
                if (!allocateOrPreempt(r, seq.numTokens())) {
                    i--; // r itself was preempted; the list shifted
                    continue;
                }
                int pos = seq.numTokens() - 1;
                batch.addSequence(seq.tokens(), pos, 1, pos, seq.blockTable(), true);
                stepSeqs.add(r);
                budget--;
            } else if (seq.status() == SequenceStatus.WAITING && budget > 0
                    && seq.numComputedTokens() < seq.numTokens() - 1) {
                // readmitted after preemption: recompute the KV of all tokens but the last
                int from = seq.numComputedTokens();
                int chunk = Math.min(seq.numTokens() - 1 - from, budget);
                batch.addSequence(seq.tokens(), from, chunk, from, seq.blockTable(), false);
                stepSeqs.add(r);
                budget -= chunk;
            }
        }
        return budget;
    }

    /** Makes room for {@code numTokens} tokens of {@code r}, preempting the latest admitted sequences. */
    private boolean allocateOrPreempt(Running r, int numTokens) {
        while (!kvCache.allocateSlots(r.seq.blockTable(), numTokens)) {
            Running victim = lastPreemptible();
            preempt(victim);
            if (victim == r) {
                return false;
            }
        }
        return true;
    }

    private Running lastPreemptible() {
        for (int i = running.size() - 1; i >= 0; i--) {
            if (running.get(i).seq.status() != SequenceStatus.PULLING_KV) {
                return running.get(i);
            }
        }
        throw new IllegalStateException("no KV block free and nothing to preempt");
    }

    private void preempt(Running victim) {
        running.remove(victim);
        stepSeqs.remove(victim); // batch entries are only added after a successful allocation
        kvCache.free(victim.seq.blockTable());
        victim.seq.setNumComputedTokens(0);
        victim.seq.setStatus(SequenceStatus.WAITING);
        waiting.addFirst(victim);
        numPreemptions++;
    }

    /** Admits waiting sequences in order while sequences and blocks allow. */
    private int admitWaiting(int budget) {
        int admitted = 0;
        while (!waiting.isEmpty() && running.size() < maxNumSeqs) {
            Running r = waiting.peek();
            Sequence seq = r.seq;
            boolean preempted = r.handleReleased;
            if (preempted && budget <= 0) {
                break;
            }
            if (!kvCache.allocateSlots(seq.blockTable(), seq.numTokens())) {
                break;
            }
            waiting.poll();
            running.add(r);
            admitted++;
            if (preempted) {
                int chunk = Math.min(seq.numTokens() - 1, budget);
                batch.addSequence(seq.tokens(), 0, chunk, 0, seq.blockTable(), false);
                stepSeqs.add(r);
                budget -= chunk;
            } else {
                seq.setStatus(SequenceStatus.PULLING_KV);
                int promptBlocks = spec.blocksFor(seq.numPromptTokens());
                r.pull = pull(r.request.kvHandle(), Arrays.copyOf(seq.blockTable().blockIds(), promptBlocks));
            }
        }
        return admitted;
    }

    /** Starts a pull; a transport that throws instead of failing the future fails the pull alike. */
    private CompletableFuture<Void> pull(KvHandle handle, int[] dstBlockIds) {
        try {
            return transport.pull(handle, storage, dstBlockIds);
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    private int reapCancelled() {
        int n = 0;
        for (Iterator<Running> it = waiting.iterator(); it.hasNext(); ) {
            Running r = it.next();
            if (r.endReason != null) {
                it.remove();
                finish(r, r.endReason, null);
                n++;
            }
        }
        for (Iterator<Running> it = running.iterator(); it.hasNext(); ) {
            Running r = it.next();
            if (r.endReason != null && r.pull != null && !r.pull.isDone()) {
                r.pull.cancel(false); // no page is needed any more; the cancel settles it at once
            }
            // A pull in flight writes into our blocks until it settles; reap after that.
            if (r.endReason != null && (r.pull == null || r.pull.isDone())) {
                it.remove();
                finish(r, r.endReason, null);
                n++;
            }
        }
        return n;
    }

    private int finishPulls() {
        int n = 0;
        for (Iterator<Running> it = running.iterator(); it.hasNext(); ) {
            Running r = it.next();
            if (r.seq.status() != SequenceStatus.PULLING_KV || !r.pull.isDone()) {
                continue;
            }
            boolean failed = r.pull.isCompletedExceptionally();
            if (!failed && r.firstTokenPending) {
                continue; // every page is in; the sequence runs once the prefill's token arrives
            }
            n++;
            if (failed) {
                Throwable cause = r.pull.handle((v, e) -> e).join();
                // A prefill that ended before computing its pages (an early handle) ended the
                // request too: there is nothing to recompute for.
                boolean prefillAborted = cause instanceof KvTransferException e
                        && e.status() == KvTransferStatus.PREFILL_ABORTED;
                if (kvLoadFailurePolicy == KvLoadFailurePolicy.RECOMPUTE && !prefillAborted) {
                    // As after a preemption: the sequence keeps its blocks and computes the KV of
                    // all its tokens but the last here, in the next steps.
                    releaseHandle(r);
                    r.seq.setNumComputedTokens(0);
                    r.seq.setStatus(SequenceStatus.WAITING);
                    numKvLoadRecomputes++;
                    continue;
                }
                it.remove();
                finish(r, null, new IllegalStateException("KV hand-off failed for " + r.seq.requestId() + ": " + cause, cause));
                continue;
            }
            releaseHandle(r);
            r.seq.setNumComputedTokens(r.seq.numPromptTokens());
            r.seq.setStatus(SequenceStatus.RUNNING);
        }
        return n;
    }

    private void runStep() {
        float[] logits;
        try {
            logits = runner.forward(batch);
        } catch (RuntimeException e) {
            for (Running r : stepSeqs) {
                running.remove(r);
                finish(r, null, e);
            }
            return;
        }
        int vocab = runner.config().vocabSize();
        for (int i = 0; i < stepSeqs.size(); i++) {
            Running r = stepSeqs.get(i);
            Sequence seq = r.seq;
            if (seq.status() != SequenceStatus.RUNNING) {
                seq.setNumComputedTokens(seq.numComputedTokens() + batch.seqStart(i + 1) - batch.seqStart(i));
                if (seq.numComputedTokens() == seq.numTokens() - 1 && !r.firstTokenPending) {
                    seq.setStatus(SequenceStatus.RUNNING);
                }
                continue;
            }
            seq.setNumComputedTokens(seq.numTokens());
            int token = sampler.sample(logits, runner.logitRow(i) * vocab, seq.sampling(), seq.seed(), seq.numOutputTokens());
            seq.appendToken(token);
            try {
                r.sink.onToken(token);
            } catch (RuntimeException e) {
                // A broken sink ends its own sequence only; the rest of the batch goes on.
                running.remove(r);
                finish(r, null, e);
                continue;
            }
            FinishReason reason = finishReason(seq, token);
            if (reason != null) {
                running.remove(r);
                finish(r, reason, null);
            }
        }
    }

    private FinishReason finishReason(Sequence seq, int token) {
        if (!seq.sampling().ignoreEos() && tokenizer.isEndOfGeneration(token)) {
            return FinishReason.STOP;
        }
        if (seq.numOutputTokens() >= seq.sampling().maxTokens() || seq.numTokens() >= contextLength) {
            return FinishReason.LENGTH;
        }
        return null;
    }

    private void releaseHandle(Running r) {
        if (!r.handleReleased) {
            r.handleReleased = true;
            transport.release(r.request.kvHandle());
        }
    }

    private void finish(Running r, FinishReason reason, Throwable error) {
        kvCache.free(r.seq.blockTable());
        r.seq.setStatus(SequenceStatus.FINISHED);
        if (r.pull != null && !r.pull.isDone()) {
            r.pull.cancel(false);
        }
        releaseHandle(r);
        tell(r, reason, error);
    }

    /** The sink's terminal call; a sink that throws is logged, so the engine goes on with the others. */
    private static void tell(Running r, FinishReason reason, Throwable error) {
        try {
            if (error != null) {
                r.sink.onError(error);
            } else {
                r.sink.onFinish(reason);
            }
        } catch (RuntimeException e) {
            LOG.error("token sink of {} threw from its terminal call", r.seq.requestId(), e);
        }
    }

    @Override
    protected void publishStats() {
        int numRunning = 0;
        for (Running r : running) {
            if (r.seq.status() == SequenceStatus.RUNNING) {
                numRunning++;
            }
        }
        stats = new EngineStats(numRunning, waiting.size() + running.size() - numRunning, 0, kvCache.numFreeBlocks(),
                kvCache.numBlocks(), 0, 0, numPreemptions, 0);
    }

    @Override
    protected void shutDown() {
        for (Running r : running) {
            if (r.pull != null) {
                r.pull.cancel(false); // a pull waiting on a prefill still computing would hold the shutdown
                r.pull.handle((v, e) -> null).join();
            }
            finish(r, FinishReason.ABORT, null);
        }
        running.clear();
        for (Running r : waiting) {
            finish(r, FinishReason.ABORT, null);
        }
        waiting.clear();
        publishStats();
        storage.close();
    }
}
