package io.tandem.router.testing;

import io.tandem.engine.FinishReason;
import io.tandem.engine.InvalidArgumentException;
import io.tandem.router.ChatTemplate;
import io.tandem.router.CompletionRequest;
import io.tandem.router.GenerationListener;
import io.tandem.router.GenerationService;
import io.tandem.router.GenerationStream;
import io.tandem.router.ModelCard;
import io.tandem.router.ModelNotFoundException;
import io.tandem.router.OverloadedException;
import io.tandem.router.Usage;
import io.tandem.router.template.ChatTemplates;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A deterministic {@link GenerationService} for protocol tests of the front ends: it "generates"
 * the prompt back, one Unicode code point per token (token id = code point), on its own thread,
 * one token per task, like a router streaming from an engine.
 *
 * <ul>
 * <li>Output is the prompt cut to {@code max_tokens} code points; finish reason {@code length}
 *     when cut, else {@code stop}. A stop string ends the output before its first occurrence
 *     (finish reason {@code stop}). A token-id prompt echoes the ids as code points.</li>
 * <li>Prompt containing {@value #INVALID_PROMPT} (a chat prompt too: the rendered conversation):
 *     {@link InvalidArgumentException} on {@code prompt}, as the router's context-length check.</li>
 * <li>Prompt {@value #OVERLOAD_PROMPT}: {@link OverloadedException}, retry after
 *     {@value #RETRY_AFTER_SECONDS} s.</li>
 * <li>Prompt {@value #OVERLOAD_LATER_PROMPT}: admitted, then {@code onError} with
 *     {@link OverloadedException} before any token (a worker whose queue is full), retry after
 *     {@value #RETRY_AFTER_SECONDS} s.</li>
 * <li>Prompt starting with {@value #FAIL_PREFIX}: one token, then {@code onError}.</li>
 * <li>Prompt starting with {@value #HOLD_PREFIX}: the whole echo, then no finish until cancelled.</li>
 * </ul>
 *
 * Every admitted request is put on {@link #admitted()}, the id of every request that ended
 * ({@code onFinish} or {@code onError} called) on {@link #finished()}, of every cancelled one on
 * {@link #cancelled()}.
 */
public final class EchoGenerationService implements GenerationService, AutoCloseable {

    public static final String MODEL = "echo-1";
    public static final int MAX_MODEL_LEN = 4096;
    public static final long CREATED = 1_700_000_000L;
    public static final String INVALID_PROMPT = "boom";
    public static final String OVERLOAD_PROMPT = "overload";
    public static final String OVERLOAD_LATER_PROMPT = "refused later";
    public static final int RETRY_AFTER_SECONDS = 7;
    public static final String FAIL_PREFIX = "fail";
    public static final String HOLD_PREFIX = "hold";
    public static final String FAILURE_MESSAGE = "KV hand-off failed";

    private final ExecutorService engine = Executors.newSingleThreadExecutor(r -> {
        Thread thread = new Thread(r, "echo-engine");
        thread.setDaemon(true);
        return thread;
    });
    private final BlockingQueue<CompletionRequest> admitted = new LinkedBlockingQueue<>();
    private final BlockingQueue<String> cancelled = new LinkedBlockingQueue<>();
    private final BlockingQueue<String> finished = new LinkedBlockingQueue<>();

    @Override
    public List<ModelCard> listModels() {
        return List.of(new ModelCard(MODEL, MAX_MODEL_LEN, CREATED, "tandem"));
    }

    @Override
    public ChatTemplate chatTemplate(String model) {
        requireServed(model);
        return ChatTemplates.forTemplate(null, null);
    }

    @Override
    public GenerationStream generate(CompletionRequest request, GenerationListener listener) {
        requireServed(request.model());
        String prompt = request.prompt() != null ? request.prompt() : codePoints(request.promptTokenIds());
        if (prompt.contains(INVALID_PROMPT)) {
            throw new InvalidArgumentException("prompt", "prompt '" + INVALID_PROMPT + "' is not allowed");
        }
        if (prompt.equals(OVERLOAD_PROMPT)) {
            throw new OverloadedException("the admission queue is full", RETRY_AFTER_SECONDS);
        }
        admitted.add(request);
        if (prompt.equals(OVERLOAD_LATER_PROMPT)) {
            engine.execute(() -> {
                listener.onError(new OverloadedException("prefill queue is full", RETRY_AFTER_SECONDS));
                finished.add(request.requestId());
            });
            return () -> {};
        }
        EchoStream stream = new EchoStream(request, prompt, listener);
        engine.execute(stream);
        return stream;
    }

    /** Requests admitted so far, in order. */
    public BlockingQueue<CompletionRequest> admitted() {
        return admitted;
    }

    /** Ids of requests whose stream was cancelled, in order. */
    public BlockingQueue<String> cancelled() {
        return cancelled;
    }

    /** Ids of requests that ended, in order. */
    public BlockingQueue<String> finished() {
        return finished;
    }

    /** Takes the next admitted request, failing if none arrives within 5 s. */
    public CompletionRequest nextAdmitted() throws InterruptedException {
        CompletionRequest request = admitted.poll(5, TimeUnit.SECONDS);
        if (request == null) {
            throw new AssertionError("no request was admitted within 5 s");
        }
        return request;
    }

    @Override
    public void close() {
        engine.shutdownNow();
    }

    private static void requireServed(String model) {
        if (model != null && !model.isEmpty() && !model.equals(MODEL)) {
            throw new ModelNotFoundException(model);
        }
    }

    private static String codePoints(int[] ids) {
        StringBuilder text = new StringBuilder();
        for (int id : ids) {
            text.appendCodePoint(id);
        }
        return text.toString();
    }

    private final class EchoStream implements GenerationStream, Runnable {
        private final CompletionRequest request;
        private final GenerationListener listener;
        private final int[] tokens;
        private final FinishReason reason;
        private final int promptTokens;
        private final boolean hold;
        private final boolean failAfterFirstToken;
        private final AtomicBoolean cancelRequested = new AtomicBoolean();
        private int next;
        private boolean done;

        EchoStream(CompletionRequest request, String prompt, GenerationListener listener) {
            this.request = request;
            this.listener = listener;
            this.promptTokens = prompt.codePointCount(0, prompt.length());
            this.hold = prompt.startsWith(HOLD_PREFIX);
            this.failAfterFirstToken = prompt.startsWith(FAIL_PREFIX);
            String output = prompt;
            FinishReason why = FinishReason.STOP;
            for (String stop : request.sampling().stop()) {
                int at = output.indexOf(stop);
                if (at >= 0) {
                    output = output.substring(0, at);
                }
            }
            int[] codePoints = output.codePoints().toArray();
            int maxTokens = request.sampling().maxTokens();
            if (codePoints.length > maxTokens) {
                codePoints = Arrays.copyOf(codePoints, maxTokens);
                why = FinishReason.LENGTH;
            }
            this.tokens = codePoints;
            this.reason = why;
        }

        @Override
        public void run() {
            if (done) {
                return;
            }
            if (cancelRequested.get()) {
                done = true;
                cancelled.add(request.requestId());
                listener.onFinish(FinishReason.ABORT, new Usage(promptTokens, next));
                EchoGenerationService.this.finished.add(request.requestId());
                return;
            }
            if (next < tokens.length) {
                int token = tokens[next++];
                listener.onOutput(new int[] {token}, Character.toString(token));
                if (failAfterFirstToken) {
                    done = true;
                    listener.onError(new IllegalStateException(FAILURE_MESSAGE));
                    EchoGenerationService.this.finished.add(request.requestId());
                    return;
                }
                engine.execute(this);
                return;
            }
            if (!hold) {
                done = true;
                listener.onFinish(reason, new Usage(promptTokens, next));
                EchoGenerationService.this.finished.add(request.requestId());
            }
        }

        @Override
        public void cancel() {
            if (cancelRequested.compareAndSet(false, true)) {
                engine.execute(this);
            }
        }
    }
}
