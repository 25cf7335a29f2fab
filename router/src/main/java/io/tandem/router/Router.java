package io.tandem.router;

import io.tandem.engine.DecodeRequest;
import io.tandem.engine.FinishReason;
import io.tandem.engine.InvalidArgumentException;
import io.tandem.engine.PrefillCallback;
import io.tandem.engine.PrefillRequest;
import io.tandem.engine.PrefillResult;
import io.tandem.engine.model.LlamaModel;
import io.tandem.engine.sampling.SamplingParams;
import io.tandem.engine.tokenizer.Tokenizer;
import io.tandem.kvcache.KvHandle;
import io.tandem.router.worker.DecodeWorkerClient;
import io.tandem.router.worker.PrefillRoute;
import io.tandem.router.worker.PrefillWorkerClient;
import io.tandem.router.worker.RoutingPolicy;
import io.tandem.router.worker.WorkerPool;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The router of one model (DESIGN.md §2–3): tokenizes and validates a request, admits it (a
 * bounded number in flight, else {@link OverloadedException}), sends the prompt to the prefill
 * engine, streams the first token at once, hands the KV handle to the decode engine and streams
 * the rest ({@link KvTransferMode#AFTER_PREFILL}); or, with {@link KvTransferMode#OVERLAP}, hands
 * the early KV handle to the decode worker while the prefill computes and the first token when it
 * comes. Detokenization and stop strings run on the router's output threads, never on an
 * engine thread.
 *
 * <p>The pools may change while requests run ({@link WorkerPool}: discovery adds and removes
 * workers); each request holds the workers it was routed to until it has ended, so a worker that
 * leaves is closed only once its requests are done.
 */
public final class Router implements GenerationService, AutoCloseable {
    private final LlamaModel model;
    private final ModelCard card;
    private final ChatTemplate chatTemplate;
    private final WorkerPool<PrefillWorkerClient> prefillPool;
    private final WorkerPool<DecodeWorkerClient> decodePool;
    private final RoutingPolicy routing;
    private final KvTransferMode transferMode;
    private final int maxInFlight;
    private final ServingMetrics metrics;
    private final AtomicInteger inFlight = new AtomicInteger();
    private final AtomicLong nextId = new AtomicLong();
    private final ExecutorService outputExecutor = Executors.newVirtualThreadPerTaskExecutor();

    /**
     * @param prefillWorkers the prefill pool
     * @param decodeWorkers  the decode pool
     * @param routing        picks a prefill and a decode worker per request
     * @param maxInFlight    requests admitted at once; more get {@link OverloadedException}
     * @param metrics        where finished requests are recorded
     */
    public Router(LlamaModel model, ChatTemplate chatTemplate, List<PrefillWorkerClient> prefillWorkers,
                  List<DecodeWorkerClient> decodeWorkers, RoutingPolicy routing, int maxInFlight, ServingMetrics metrics) {
        this(model, chatTemplate, prefillWorkers, decodeWorkers, routing, KvTransferMode.AFTER_PREFILL, maxInFlight,
                metrics);
    }

    /**
     * @param transferMode when the decode side starts: after the prefill, or on its early handle
     *                     (the workers must support {@code PrefillWithEarlyHandle} and
     *                     {@code DecodeFromEarlyHandle}; the in-process hand-off does not overlap)
     */
    public Router(LlamaModel model, ChatTemplate chatTemplate, List<PrefillWorkerClient> prefillWorkers,
                  List<DecodeWorkerClient> decodeWorkers, RoutingPolicy routing, KvTransferMode transferMode,
                  int maxInFlight, ServingMetrics metrics) {
        // fixed pools: no worker ever leaves them, so none is closed by them
        this(model, chatTemplate, new WorkerPool<>("prefill", prefillWorkers, routing::workerRemoved, Runnable::run),
                new WorkerPool<>("decode", decodeWorkers, routing::workerRemoved, Runnable::run), routing, transferMode,
                maxInFlight, metrics);
    }

    /**
     * A router over pools whose membership may change while it runs (discovery adds and removes
     * workers); the pools stay the caller's to close. Their {@code onClosed} should call {@code
     * routing.workerRemoved}.
     *
     * @param prefillPool the prefill pool
     * @param decodePool  the decode pool
     */
    public Router(LlamaModel model, ChatTemplate chatTemplate, WorkerPool<PrefillWorkerClient> prefillPool,
                  WorkerPool<DecodeWorkerClient> decodePool, RoutingPolicy routing, KvTransferMode transferMode,
                  int maxInFlight, ServingMetrics metrics) {
        this.transferMode = transferMode;
        this.metrics = metrics;
        this.prefillPool = prefillPool;
        this.decodePool = decodePool;
        this.routing = routing;
        this.model = model;
        this.card = new ModelCard(model.id(), model.config().contextLength(), Instant.now().getEpochSecond(), "tandem");
        this.chatTemplate = chatTemplate;
        this.maxInFlight = maxInFlight;
    }

    @Override
    public List<ModelCard> listModels() {
        return List.of(card);
    }

    @Override
    public ChatTemplate chatTemplate(String modelName) {
        resolve(modelName);
        return chatTemplate;
    }

    /** Requests admitted and not yet finished. */
    public int numInFlight() {
        return inFlight.get();
    }

    @Override
    public GenerationStream generate(CompletionRequest request, GenerationListener listener) {
        resolve(request.model());
        Tokenizer tokenizer = model.tokenizer();
        int[] prompt = request.promptTokenIds() != null ? request.promptTokenIds() : tokenize(request.prompt());
        SamplingParams sampling = request.sampling();
        if (sampling.maxTokens() == SamplingParams.UNTIL_CONTEXT_END) {
            sampling = sampling.withMaxTokens(Math.max(1, model.config().contextLength() - prompt.length));
        }
        validate(prompt, sampling);
        if (inFlight.incrementAndGet() > maxInFlight) {
            inFlight.decrementAndGet();
            throw new OverloadedException("server is at its limit of " + maxInFlight + " requests in flight", 1);
        }
        PrefillRoute route = choosePrefill(prompt, request.cacheSalt());
        if (route == null) {
            inFlight.decrementAndGet();
            throw new OverloadedException("no healthy prefill worker", 1);
        }
        String engineId = request.requestId() + "#" + nextId.incrementAndGet();
        long seed = sampling.seed() != null ? sampling.seed() : ThreadLocalRandom.current().nextLong();
        boolean early = transferMode == KvTransferMode.OVERLAP && sampling.maxTokens() > 1;
        Flow flow = new Flow(engineId, prompt, sampling, seed, System.nanoTime(), route, early);
        flow.output = new RequestOutput(sampling.maxTokens(), prompt, tokenizer, sampling.stop(), outputExecutor,
                listener, flow::cancel, flow);
        if (!route.worker().prefill(new PrefillRequest(engineId, prompt, sampling, seed, request.cacheSalt(), early), flow)) {
            flow.prefillEnded();
            flow.letGoOfPrefill(); // the request never started: no onDone comes
            inFlight.decrementAndGet();
            throw new OverloadedException("prefill queue is full", 1);
        }
        return flow::cancel;
    }

    /** Choices of a worker that left its pool between the policy's choice and the hold on it, before giving up. */
    private static final int MAX_CHOICES = 3;

    /**
     * The policy's prefill choice among the pool's current members, held for the request ({@link
     * WorkerPool#tryAcquire}); a worker that left the pool meanwhile is handed back to the policy
     * and the choice made again.
     *
     * @return the held route, or {@code null} if no healthy prefill worker is left
     */
    private PrefillRoute choosePrefill(int[] prompt, String cacheSalt) {
        for (int i = 0; i < MAX_CHOICES; i++) {
            PrefillRoute route = routing.choosePrefill(prefillPool.members(), prompt, cacheSalt);
            if (route == null || prefillPool.tryAcquire(route.worker())) {
                return route;
            }
            routing.prefillEnded(route);
        }
        return null;
    }

    /** As {@link #choosePrefill}, for the decode worker. */
    private DecodeWorkerClient chooseDecode() {
        for (int i = 0; i < MAX_CHOICES; i++) {
            DecodeWorkerClient d = routing.chooseDecode(decodePool.members());
            if (d == null || decodePool.tryAcquire(d)) {
                return d;
            }
            routing.decodeEnded(d);
        }
        return null;
    }

    /**
     * Tokenizes prompt text as llama.cpp's server does: special tokens written in the text are
     * parsed, BOS is added when the model wants it, and a BOS the text already starts with (a
     * chat template that writes it) is not doubled.
     */
    private int[] tokenize(String text) {
        Tokenizer tokenizer = model.tokenizer();
        int[] ids = tokenizer.encode(text, tokenizer.addBos(), true);
        int bos = tokenizer.bosId();
        if (ids.length >= 2 && bos >= 0 && ids[0] == bos && ids[1] == bos) {
            return java.util.Arrays.copyOfRange(ids, 1, ids.length);
        }
        return ids;
    }

    private void resolve(String modelName) {
        if (modelName != null && !modelName.isEmpty() && !modelName.equals(model.id())) {
            throw new ModelNotFoundException(modelName);
        }
    }

    private void validate(int[] prompt, SamplingParams sampling) {
        int vocab = model.config().vocabSize();
        int ctx = model.config().contextLength();
        if (prompt.length == 0) {
            throw new InvalidArgumentException("prompt", "prompt must contain at least one token");
        }
        for (int t : prompt) {
            if (t < 0 || t >= vocab) {
                throw new InvalidArgumentException("prompt", "token id " + t + " is outside the vocabulary [0, " + vocab + ")");
            }
        }
        if (prompt.length >= ctx) {
            throw new InvalidArgumentException("prompt", "This model's maximum context length is " + ctx
                    + " tokens. However, your prompt has " + prompt.length + " tokens, leaving no room for a completion.");
        }
        if (prompt.length + sampling.maxTokens() > ctx) {
            throw new InvalidArgumentException("max_tokens", "This model's maximum context length is " + ctx
                    + " tokens. However, you requested " + (prompt.length + sampling.maxTokens()) + " tokens ("
                    + prompt.length + " in the prompt, " + sampling.maxTokens() + " in the completion).");
        }
    }

    /** One request's trip through prefill and decode. */
    private final class Flow implements PrefillCallback, RequestOutput.Completion {
        final String engineId;
        final long arrivalNanos;
        volatile long queueNanos;
        final int[] prompt;
        final SamplingParams sampling;
        final long seed;
        final AtomicBoolean cancelled = new AtomicBoolean();
        final AtomicBoolean finished = new AtomicBoolean();
        final PrefillRoute route;
        final PrefillWorkerClient prefill;
        /** The decode side starts on the early KV handle ({@link KvTransferMode#OVERLAP}). */
        final boolean early;
        volatile boolean prefilled;
        final AtomicBoolean prefillEnded = new AtomicBoolean();
        final AtomicBoolean decodeEnded = new AtomicBoolean();
        /**
         * The prefill worker is held ({@link WorkerPool#tryAcquire}) until both its prefill has ended
         * (no more policy calls for it) and the request has (no more releases of its handle).
         */
        final AtomicInteger prefillHolds = new AtomicInteger(2);
        volatile DecodeWorkerClient decode;
        RequestOutput output;

        Flow(String engineId, int[] prompt, SamplingParams sampling, long seed, long arrivalNanos, PrefillRoute route,
             boolean early) {
            this.engineId = engineId;
            this.route = route;
            this.prefill = route.worker();
            this.early = early;
            this.arrivalNanos = arrivalNanos;
            this.prompt = prompt;
            this.sampling = sampling;
            this.seed = seed;
        }

        /**
         * Overlap: hands the early handle to a decode worker, which pulls pages while the prefill
         * computes. The handle is ours until the worker accepts it; releasing it cancels the prefill.
         */
        @Override
        public void onKvHandle(KvHandle handle) {
            if (cancelled.get()) {
                prefill.release(handle);
                return;
            }
            DecodeWorkerClient d = chooseDecode();
            if (d == null) {
                prefill.release(handle);
                output.onError(new OverloadedException("no healthy decode worker", 1));
                return;
            }
            decode = d;
            if (finished.get()) {
                decodeEnded(); // the request ended (client gone) between the choice and here
            }
            DecodeRequest request = new DecodeRequest(engineId, prompt, DecodeRequest.FIRST_TOKEN_PENDING, handle,
                    sampling, seed);
            if (!d.decode(request, output, () -> prefill.release(handle))) {
                prefill.release(handle);
                output.onError(new OverloadedException("decode queue is full", 1));
            } else if (cancelled.get()) {
                d.cancel(engineId);
            }
        }

        @Override
        public void onPrefilled(PrefillResult result) {
            prefillEnded();
            queueNanos = result.queueNanos();
            int first = result.firstToken();
            if (early) {
                prefilled = true;
                output.onToken(first);
                DecodeWorkerClient d = decode;
                if (d != null) {
                    d.provideFirstToken(engineId, first, result.kvHandle().pageSummaries()); // the decode side ends the request on EOS
                }
                return;
            }
            output.onToken(first);
            boolean eos = !sampling.ignoreEos() && model.tokenizer().isEndOfGeneration(first);
            if (cancelled.get() || eos || sampling.maxTokens() == 1) {
                prefill.release(result.kvHandle());
                output.onFinish(cancelled.get() ? FinishReason.ABORT : eos ? FinishReason.STOP : FinishReason.LENGTH);
                return;
            }
            DecodeWorkerClient d = chooseDecode();
            if (d == null) {
                prefill.release(result.kvHandle());
                output.onError(new OverloadedException("no healthy decode worker", 1));
                return;
            }
            decode = d;
            if (finished.get()) {
                decodeEnded(); // the request ended (client gone) between the choice and here
            }
            // A Decode call that ends before the worker took the handle leaves it ours to release.
            if (!d.decode(new DecodeRequest(engineId, prompt, first, result.kvHandle(), sampling, seed), output,
                    () -> prefill.release(result.kvHandle()))) {
                prefill.release(result.kvHandle());
                output.onError(new OverloadedException("decode queue is full", 1));
            } else if (cancelled.get()) {
                d.cancel(engineId);
            }
        }

        @Override
        public void onFailed(Throwable error) {
            prefillEnded();
            // Overlap: a prefill cancelled by someone else than our client (its decode worker gave
            // the lease back, say) failed the request.
            boolean aborted = error instanceof java.util.concurrent.CancellationException && (!early || cancelled.get());
            if (aborted) {
                output.onFinish(FinishReason.ABORT);
            } else {
                output.onError(error);
            }
            DecodeWorkerClient d = decode;
            if (early && d != null) {
                d.cancel(engineId); // its pull would fail too (PREFILL_ABORTED); end it at once
            }
        }

        /** Tells the policy the prefill no longer loads its worker; once, however it ended. */
        void prefillEnded() {
            if (prefillEnded.compareAndSet(false, true)) {
                routing.prefillEnded(route);
                letGoOfPrefill();
            }
        }

        /** One of the two ends the prefill worker is held for (see {@link #prefillHolds}). */
        void letGoOfPrefill() {
            if (prefillHolds.decrementAndGet() == 0) {
                prefillPool.release(prefill);
            }
        }

        /** Tells the policy the sequence no longer loads its decode worker, and lets go of the worker; once. */
        void decodeEnded() {
            if (decodeEnded.compareAndSet(false, true)) {
                routing.decodeEnded(decode);
                decodePool.release(decode);
            }
        }

        void cancel() {
            if (cancelled.compareAndSet(false, true)) {
                cancelEngines();
            }
        }

        void cancelEngines() {
            DecodeWorkerClient d = decode;
            if (d != null) {
                d.cancel(engineId);
            }
            if (d == null || (early && !prefilled)) {
                prefill.cancel(engineId);
            }
        }

        @Override
        public void onDone(FinishReason reason, long[] tokenNanos, int numTokens) {
            if (finished.compareAndSet(false, true)) {
                inFlight.decrementAndGet();
                if (decode != null) {
                    decodeEnded();
                }
                letGoOfPrefill();
                if (reason != null) {
                    metrics.recordFinished(arrivalNanos, queueNanos, tokenNanos, numTokens, prompt.length, reason);
                }
            }
        }
    }

    /** Stops the output executor; engines are closed by their owner. */
    @Override
    public void close() {
        outputExecutor.shutdown();
    }
}
