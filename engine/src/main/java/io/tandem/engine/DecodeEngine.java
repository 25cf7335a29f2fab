package io.tandem.engine;

import io.tandem.engine.backend.Backend;
import io.tandem.engine.model.ForwardBatch;
import io.tandem.engine.model.LlamaModel;
import io.tandem.engine.model.ModelRunner;
import io.tandem.engine.sampling.Sampler;
import io.tandem.kvcache.BlockPool;
import io.tandem.kvcache.KvCacheSpec;
import io.tandem.kvcache.KvCacheStorage;
import io.tandem.kvcache.transfer.KvTransport;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * The decode side (DESIGN.md §2): iteration-level continuous batching over many sequences. A new
 * sequence pulls its prompt's KV pages from the prefill worker through a {@link KvTransport}
 * while the others keep decoding; once its pages are in, it joins the next step. Every step runs
 * one forward pass with one token per running sequence (one pass over the weights for the whole
 * batch), samples, and streams each token to the sequence's {@link TokenSink}.
 *
 * <p>Admission reserves the blocks a sequence can ever need ({@code prompt + max_tokens}, capped at
 * the context), so a running sequence never runs out of blocks.
 */
public final class DecodeEngine extends EngineLoop<DecodeEngine.Command> {
    /** Commands other threads send to the engine thread. */
    sealed interface Command permits Submit, Cancel {}

    record Submit(DecodeRequest request, TokenSink sink) implements Command {}

    record Cancel(String requestId) implements Command {}

    private static final class Running {
        final Sequence seq;
        final TokenSink sink;
        final DecodeRequest request;
        final int reservedBlocks;
        CompletableFuture<Void> pull;
        boolean cancelled;

        Running(Sequence seq, TokenSink sink, DecodeRequest request, int reservedBlocks) {
            this.seq = seq;
            this.sink = sink;
            this.request = request;
            this.reservedBlocks = reservedBlocks;
        }
    }

    private final KvCacheSpec spec;
    private final KvCacheStorage storage;
    private final BlockPool blockPool;
    private final ModelRunner runner;
    private final Sampler sampler;
    private final ForwardBatch batch;
    private final KvTransport transport;
    private final int contextLength;
    private final io.tandem.engine.tokenizer.Tokenizer tokenizer;
    private final int maxNumSeqs;
    private final ArrayDeque<Running> waiting = new ArrayDeque<>();
    private final List<Running> active = new ArrayList<>();
    private final List<Running> stepSeqs = new ArrayList<>();
    private int reservedBlocks;
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
        this.blockPool = new BlockPool(numBlocks, false);
        this.maxNumSeqs = config.maxNumSeqs();
        this.runner = new ModelRunner(model, backend, storage, maxNumSeqs, maxNumSeqs);
        this.sampler = new Sampler(mc.vocabSize());
        this.batch = new ForwardBatch(maxNumSeqs, maxNumSeqs);
        this.transport = transport;
        this.contextLength = mc.contextLength();
        this.tokenizer = model.tokenizer();
        publishStats();
        start();
    }

    public EngineStats stats() {
        return stats;
    }

    /** Queues a sequence to continue; {@code false} if the command queue is full. */
    public boolean submit(DecodeRequest request, TokenSink sink) {
        return enqueue(new Submit(request, sink));
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
        }
    }

    private void admit(Submit s) {
        DecodeRequest r = s.request();
        int promptLen = r.promptTokenIds().length;
        int maxLen = Math.min(contextLength, promptLen + r.sampling().maxTokens());
        int[] tokens = java.util.Arrays.copyOf(r.promptTokenIds(), promptLen + 1);
        tokens[promptLen] = r.firstToken();
        Sequence seq = new Sequence(r.requestId(), tokens, promptLen, r.sampling(), r.seed(), maxLen, spec.blockSize());
        int reserve = spec.blocksFor(maxLen);
        if (reserve > blockPool.numBlocks()) {
            transport.release(r.kvHandle());
            s.sink().onError(new IllegalStateException("sequence of up to " + maxLen + " tokens needs " + reserve
                    + " KV blocks; the decode worker has " + blockPool.numBlocks()));
            return;
        }
        waiting.add(new Running(seq, s.sink(), r, reserve));
    }

    private void markCancelled(String requestId) {
        for (Running r : waiting) {
            if (r.seq.requestId().equals(requestId)) {
                r.cancelled = true;
            }
        }
        for (Running r : active) {
            if (r.seq.requestId().equals(requestId)) {
                r.cancelled = true;
            }
        }
    }

    @Override
    protected int step() {
        int work = admitWaiting() + reapCancelled() + finishPulls();
        stepSeqs.clear();
        for (Running r : active) {
            if (r.seq.status() == SequenceStatus.RUNNING && stepSeqs.size() < maxNumSeqs) {
                stepSeqs.add(r);
            }
        }
        if (!stepSeqs.isEmpty()) {
            decodeStep();
            work += stepSeqs.size();
        }
        return work;
    }

    /** Moves waiting sequences whose reservation fits into the active set and starts their KV pull. */
    private int admitWaiting() {
        int admitted = 0;
        while (!waiting.isEmpty()) {
            Running r = waiting.peek();
            if (r.cancelled) {
                waiting.poll();
                transport.release(r.request.kvHandle());
                r.sink.onFinish(FinishReason.ABORT);
                continue;
            }
            if (reservedBlocks + r.reservedBlocks > blockPool.numBlocks()) {
                break;
            }
            waiting.poll();
            reservedBlocks += r.reservedBlocks;
            Sequence seq = r.seq;
            int promptBlocks = spec.blocksFor(seq.numPromptTokens());
            int at = seq.blockTable().reserve(promptBlocks);
            if (!blockPool.allocate(promptBlocks, seq.blockTable().blockIds(), at)) {
                throw new IllegalStateException("reserved KV blocks are not free: " + blockPool.numFreeBlocks());
            }
            seq.blockTable().commit(promptBlocks);
            seq.setStatus(SequenceStatus.PULLING_KV);
            r.pull = transport.pull(r.request.kvHandle(), storage, seq.blockTable().toArray());
            active.add(r);
            admitted++;
        }
        return admitted;
    }

    private int reapCancelled() {
        int n = 0;
        for (Iterator<Running> it = active.iterator(); it.hasNext(); ) {
            Running r = it.next();
            // A sequence whose pull is in flight is reaped once the pull settles (its pages are
            // being written into our blocks until then).
            if (r.cancelled && (r.pull == null || r.pull.isDone())) {
                it.remove();
                finish(r, FinishReason.ABORT, null);
                n++;
            }
        }
        return n;
    }

    private int finishPulls() {
        int n = 0;
        for (Iterator<Running> it = active.iterator(); it.hasNext(); ) {
            Running r = it.next();
            if (r.seq.status() != SequenceStatus.PULLING_KV || !r.pull.isDone()) {
                continue;
            }
            n++;
            if (r.pull.isCompletedExceptionally()) {
                it.remove();
                Throwable cause = r.pull.handle((v, e) -> e).join();
                finish(r, null, new IllegalStateException("KV hand-off failed for " + r.seq.requestId() + ": " + cause, cause));
                continue;
            }
            transport.release(r.request.kvHandle());
            r.seq.setNumComputedTokens(r.seq.numPromptTokens());
            r.seq.setStatus(SequenceStatus.RUNNING);
            if (r.seq.numTokens() >= contextLength) {
                it.remove();
                finish(r, FinishReason.LENGTH, null);
            }
        }
        return n;
    }

    private void decodeStep() {
        batch.clear();
        for (Running r : stepSeqs) {
            Sequence seq = r.seq;
            int pos = seq.numTokens() - 1;
            if (pos / spec.blockSize() == seq.blockTable().numBlocks()) {
                int at = seq.blockTable().reserve(1);
                if (!blockPool.allocate(1, seq.blockTable().blockIds(), at)) {
                    throw new IllegalStateException("reserved KV block is not free");
                }
                seq.blockTable().commit(1);
            }
            batch.addSequence(seq.tokens(), pos, 1, pos, seq.blockTable(), true);
        }
        float[] logits;
        try {
            logits = runner.forward(batch);
        } catch (RuntimeException e) {
            for (Running r : stepSeqs) {
                active.remove(r);
                finish(r, null, e);
            }
            return;
        }
        int vocab = runner.config().vocabSize();
        for (int i = 0; i < stepSeqs.size(); i++) {
            Running r = stepSeqs.get(i);
            Sequence seq = r.seq;
            seq.setNumComputedTokens(seq.numTokens());
            int token = sampler.sample(logits, runner.logitRow(i) * vocab, seq.sampling(), seq.seed(), seq.numOutputTokens());
            seq.appendToken(token);
            r.sink.onToken(token);
            FinishReason reason = finishReason(seq, token);
            if (reason != null) {
                active.remove(r);
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

    private void finish(Running r, FinishReason reason, Throwable error) {
        var table = r.seq.blockTable();
        int[] ids = table.blockIds();
        for (int i = table.numBlocks() - 1; i >= 0; i--) {
            blockPool.free(ids, i, i + 1);
        }
        table.clear();
        reservedBlocks -= r.reservedBlocks;
        r.seq.setStatus(SequenceStatus.FINISHED);
        if (r.pull != null && !r.pull.isDone()) {
            r.pull.cancel(false);
        }
        if (error != null) {
            transport.release(r.request.kvHandle());
            r.sink.onError(error);
        } else {
            if (reason == FinishReason.ABORT) {
                transport.release(r.request.kvHandle());
            }
            r.sink.onFinish(reason);
        }
    }

    @Override
    protected void publishStats() {
        int running = 0;
        for (Running r : active) {
            if (r.seq.status() == SequenceStatus.RUNNING) {
                running++;
            }
        }
        stats = new EngineStats(running, waiting.size() + active.size() - running, 0,
                blockPool.numFreeBlocks(), blockPool.numBlocks());
    }

    @Override
    public void onClose() {
        for (Running r : active) {
            if (r.pull != null) {
                r.pull.handle((v, e) -> null).join();
            }
            finish(r, FinishReason.ABORT, null);
        }
        active.clear();
        for (Running r : waiting) {
            transport.release(r.request.kvHandle());
            r.sink.onFinish(FinishReason.ABORT);
        }
        waiting.clear();
        publishStats();
        storage.close();
    }
}
