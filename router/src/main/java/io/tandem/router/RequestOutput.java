package io.tandem.router;

import io.tandem.engine.FinishReason;
import io.tandem.engine.TokenSink;
import io.tandem.engine.tokenizer.IncrementalDetokenizer;
import io.tandem.engine.tokenizer.Tokenizer;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One request's output path from the engines to its {@link GenerationListener}: engine threads
 * publish token ids into a bounded int buffer (sized for {@code max_tokens}, so it never fills and
 * the engine never waits or boxes), and a drain task on the router's executor detokenizes, applies
 * stop strings and calls the listener, one drain at a time per request.
 *
 * <p>When the prompt holds no text (only BOS, e.g. the OpenAI prompt {@code ""}), the output starts
 * the document, so the SPM dummy-prefix space of its first piece is dropped, as llama.cpp's
 * {@code llama_detokenize} and Hugging Face's {@code decode} drop it: {@code prompt + text} is the
 * whole text. After a prompt with text the continuation keeps its leading space ({@code " with"}).
 *
 * <p>Single producer at a time (the prefill thread writes the first token, then hands over to the
 * decode thread through the decode command queue, which orders the writes).
 */
final class RequestOutput implements TokenSink {
    private static final Logger LOG = LoggerFactory.getLogger(RequestOutput.class);

    /** Told once when the request ends: its reason ({@code null} after an error) and token times. */
    interface Completion {
        void onDone(FinishReason reason, long[] tokenNanos, int numTokens);
    }

    private final int[] tokens;
    private final long[] tokenNanos;
    private final AtomicInteger published = new AtomicInteger();
    private final AtomicBoolean drainScheduled = new AtomicBoolean();
    private volatile FinishReason finishReason;
    private volatile Throwable error;
    private final Executor executor;
    private final GenerationListener listener;
    private final IncrementalDetokenizer detokenizer;
    private final List<String> stop;
    private final int promptTokens;
    private final Completion onDone;
    private final Runnable cancelEngines;
    private final StringBuilder held = new StringBuilder();
    /** Drop one leading space of the first text still to come (see the class comment). */
    private boolean dropSpacePrefix;
    private int consumed;
    private boolean done;

    /**
     * @param prompt the prompt's token ids; its length is the usage's {@code prompt_tokens}, and
     *               whether it holds any text decides the dummy-prefix space
     */
    RequestOutput(int maxTokens, int[] prompt, Tokenizer tokenizer, List<String> stop, Executor executor,
                  GenerationListener listener, Runnable cancelEngines, Completion onDone) {
        this.tokens = new int[maxTokens];
        this.tokenNanos = new long[maxTokens];
        this.promptTokens = prompt.length;
        this.dropSpacePrefix = tokenizer.addSpacePrefix() && !hasText(prompt, tokenizer);
        this.detokenizer = new IncrementalDetokenizer(tokenizer);
        this.stop = stop;
        this.executor = executor;
        this.listener = listener;
        this.cancelEngines = cancelEngines;
        this.onDone = onDone;
    }

    @Override
    public void onToken(int tokenId) {
        int n = published.get();
        if (n < tokens.length) {
            tokens[n] = tokenId;
            tokenNanos[n] = System.nanoTime();
            published.lazySet(n + 1);
            scheduleDrain();
        }
    }

    @Override
    public void onFinish(FinishReason reason) {
        finishReason = reason;
        scheduleDrain();
    }

    @Override
    public void onError(Throwable e) {
        error = e;
        scheduleDrain();
    }

    private void scheduleDrain() {
        if (drainScheduled.compareAndSet(false, true)) {
            try {
                executor.execute(this::drain);
            } catch (RejectedExecutionException e) {
                // The router is closed and the engines are ending what they hold: tell the listener
                // here (this drain owns the flag), rather than throw into the engine thread.
                drain();
            }
        }
    }

    private void drain() {
        do {
            try {
                drainOnce();
            } catch (RuntimeException e) {
                listenerFailed(e);
            }
            drainScheduled.set(false);
        } while (!done && hasPending() && drainScheduled.compareAndSet(false, true));
    }

    /**
     * The listener threw (its stream is gone): the request ends here, once. Without this the drain
     * flag stayed set, so nothing was ever drained again and the in-flight slot never came back.
     */
    private void listenerFailed(RuntimeException e) {
        if (done) {
            LOG.warn("listener threw from its terminal call", e);
            return;
        }
        done = true;
        onDone.onDone(null, tokenNanos, consumed);
        cancelEngines.run();
        try {
            listener.onError(e);
        } catch (RuntimeException again) {
            LOG.warn("listener threw from onError after failing with {}", e.toString(), again);
        }
    }

    private boolean hasPending() {
        return published.get() > consumed || finishReason != null || error != null;
    }

    private void drainOnce() {
        if (done) {
            return;
        }
        // Read the terminal state before the tokens, so tokens published before it are seen.
        FinishReason reason = finishReason;
        Throwable failure = error;
        int n = published.get();
        int from = consumed;
        for (; consumed < n; consumed++) {
            held.append(detokenizer.feed(tokens[consumed]));
        }
        if (dropSpacePrefix && !held.isEmpty()) {
            if (held.charAt(0) == ' ') {
                held.deleteCharAt(0);
            }
            dropSpacePrefix = false;
        }
        int stopAt = firstStop();
        if (stopAt >= 0) {
            held.setLength(stopAt);
            emit(from, n, held.toString());
            held.setLength(0);
            finish(FinishReason.STOP);
            cancelEngines.run();
            return;
        }
        if (failure != null) {
            emit(from, n, "");
            done = true;
            onDone.onDone(null, tokenNanos, consumed);
            listener.onError(failure);
            return;
        }
        if (reason != null) {
            held.append(detokenizer.flush());
            emit(from, n, held.toString());
            held.setLength(0);
            finish(reason);
            return;
        }
        int keep = heldBackForStop();
        String out = held.substring(0, held.length() - keep);
        held.delete(0, held.length() - keep);
        emit(from, n, out);
    }

    private static boolean hasText(int[] prompt, Tokenizer tokenizer) {
        for (int id : prompt) {
            if (tokenizer.tokenByteLength(id) > 0) {
                return true;
            }
        }
        return false;
    }

    private void emit(int from, int to, String text) {
        if (to > from || !text.isEmpty()) {
            listener.onOutput(Arrays.copyOfRange(tokens, from, to), text);
        }
    }

    private void finish(FinishReason reason) {
        done = true;
        onDone.onDone(reason, tokenNanos, consumed);
        listener.onFinish(reason, new Usage(promptTokens, consumed));
    }

    /** Index in {@link #held} of the earliest stop string, or -1. */
    private int firstStop() {
        int best = -1;
        for (String s : stop) {
            int i = held.indexOf(s);
            if (i >= 0 && (best < 0 || i < best)) {
                best = i;
            }
        }
        return best;
    }

    /** Whether {@link #held} ends with the first {@code len} chars of {@code s}. */
    private boolean endsWithPrefix(String s, int len) {
        int start = held.length() - len;
        for (int i = 0; i < len; i++) {
            if (held.charAt(start + i) != s.charAt(i)) {
                return false;
            }
        }
        return true;
    }

    /** Length of the longest suffix of {@link #held} that could still grow into a stop string. */
    private int heldBackForStop() {
        int keep = 0;
        for (String s : stop) {
            for (int len = Math.min(s.length() - 1, held.length()); len > keep; len--) {
                if (endsWithPrefix(s, len)) {
                    keep = len;
                    break;
                }
            }
        }
        return keep;
    }
}
