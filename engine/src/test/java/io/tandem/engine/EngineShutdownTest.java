package io.tandem.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tandem.engine.backend.CpuBackend;
import io.tandem.engine.model.GgufModelLoader;
import io.tandem.engine.model.LlamaModel;
import io.tandem.engine.sampling.SamplingParams;
import io.tandem.kvcache.KvDtype;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@code close()} while requests are in flight: every callback and sink gets exactly one terminal
 * call, every handle is released and every block freed — including requests whose command was
 * still queued behind the step the engine thread was running when it was told to stop.
 */
@Timeout(60)
class EngineShutdownTest {
    private static final EngineConfig CONFIG =
            new EngineConfig(16, KvDtype.F32, 64L << 20, 8, 64, 1024, Duration.ofSeconds(30));
    private static LlamaModel model;
    private static int[] prompt;

    @BeforeAll
    static void load() throws Exception {
        model = GgufModelLoader.load(ReferenceModel.ggufPath(), 0);
        prompt = ReferenceModel.cases().get(1).promptTokenIds();
    }

    @AfterAll
    static void close() {
        model.close();
    }

    /** Records the terminal calls a prefill callback gets. */
    private static final class PrefillOutcome implements PrefillCallback {
        final CompletableFuture<PrefillResult> result = new CompletableFuture<>();
        final List<String> terminalCalls = new ArrayList<>();
        final CountDownLatch hold;
        boolean throwOnFailed;

        PrefillOutcome(CountDownLatch hold) {
            this.hold = hold;
        }

        @Override
        public synchronized void onPrefilled(PrefillResult r) {
            terminalCalls.add("prefilled");
            result.complete(r);
            awaitQuietly(hold);
        }

        @Override
        public synchronized void onFailed(Throwable error) {
            terminalCalls.add("failed");
            result.completeExceptionally(error);
            if (throwOnFailed) {
                throw new IllegalStateException("callback broken");
            }
        }
    }

    /** Records what a decode sink is told. */
    private static final class SinkOutcome implements TokenSink {
        final CompletableFuture<FinishReason> finish = new CompletableFuture<>();
        final List<String> terminalCalls = new ArrayList<>();
        final CountDownLatch entered = new CountDownLatch(1);
        final CountDownLatch hold;
        final boolean throwOnFinish;

        SinkOutcome(CountDownLatch hold, boolean throwOnFinish) {
            this.hold = hold;
            this.throwOnFinish = throwOnFinish;
        }

        @Override
        public void onToken(int tokenId) {
            entered.countDown();
            awaitQuietly(hold);
        }

        @Override
        public synchronized void onFinish(FinishReason reason) {
            terminalCalls.add("finish " + reason);
            finish.complete(reason);
            if (throwOnFinish) {
                throw new IllegalStateException("sink broken");
            }
        }

        @Override
        public synchronized void onError(Throwable error) {
            terminalCalls.add("error");
            finish.completeExceptionally(error);
        }
    }

    @Test
    void shouldFailAPrefillStillQueuedWhenTheEngineCloses() throws Exception {
        CountDownLatch hold = new CountDownLatch(1);
        try (CpuBackend backend = new CpuBackend(2)) {
            PrefillEngine prefill = new PrefillEngine("p", model, backend, CONFIG);
            PrefillOutcome first = new PrefillOutcome(hold);
            PrefillOutcome queued = new PrefillOutcome(new CountDownLatch(0));
            assertThat(prefill.submit(new PrefillRequest("first", prompt, SamplingParams.greedy(8), 0), first)).isTrue();
            first.result.get(30, TimeUnit.SECONDS); // the engine thread now waits inside the callback
            assertThat(prefill.submit(new PrefillRequest("queued", prompt, SamplingParams.greedy(8), 0), queued)).isTrue();

            Thread closer = closeWhileTheEngineThreadIsHeld(prefill, hold);

            assertThatThrownBy(() -> queued.result.get(10, TimeUnit.SECONDS)).isInstanceOf(CancellationException.class);
            closer.join();
            assertThat(first.terminalCalls).containsExactly("prefilled");
            assertThat(queued.terminalCalls).containsExactly("failed");
            assertThat(prefill.stats().numFreeBlocks()).isEqualTo(prefill.stats().numTotalBlocks());
            assertThat(prefill.submit(new PrefillRequest("late", prompt, SamplingParams.greedy(8), 0),
                    new PrefillOutcome(new CountDownLatch(0)))).as("accepted after close").isFalse();
        }
    }

    @Test
    void shouldFailEveryQueuedPrefillOnCloseEvenIfACallbackThrows() throws Exception {
        CountDownLatch hold = new CountDownLatch(1);
        try (CpuBackend backend = new CpuBackend(2)) {
            PrefillEngine prefill = new PrefillEngine("p", model, backend, CONFIG);
            PrefillOutcome first = new PrefillOutcome(hold);
            prefill.submit(new PrefillRequest("first", prompt, SamplingParams.greedy(8), 0), first);
            first.result.get(30, TimeUnit.SECONDS);
            List<PrefillOutcome> queued = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                PrefillOutcome outcome = new PrefillOutcome(new CountDownLatch(0));
                outcome.throwOnFailed = true;
                queued.add(outcome);
                prefill.submit(new PrefillRequest("queued-" + i, prompt, SamplingParams.greedy(8), 0), outcome);
            }

            closeWhileTheEngineThreadIsHeld(prefill, hold).join();

            for (PrefillOutcome outcome : queued) {
                assertThat(outcome.terminalCalls).containsExactly("failed");
            }
            assertThat(prefill.stats().numFreeBlocks()).isEqualTo(prefill.stats().numTotalBlocks());
        }
    }

    @Test
    void shouldAbortADecodeStillQueuedWhenTheEngineClosesAndReleaseItsHandle() throws Exception {
        CountDownLatch hold = new CountDownLatch(1);
        try (CpuBackend backend = new CpuBackend(2);
             PrefillEngine prefill = new PrefillEngine("p", model, backend, CONFIG)) {
            DecodeEngine decode = new DecodeEngine(model, backend, CONFIG, new InProcessKvTransport(prefill));
            SinkOutcome running = new SinkOutcome(hold, false);
            SinkOutcome queued = new SinkOutcome(new CountDownLatch(0), false);
            assertThat(decode.submit(decodeRequest(prefill, "running"), running)).isTrue();
            running.entered.await(); // the engine thread now waits inside the sink
            DecodeRequest queuedRequest = decodeRequest(prefill, "queued");
            assertThat(decode.submit(queuedRequest, queued)).isTrue();

            Thread closer = closeWhileTheEngineThreadIsHeld(decode, hold);

            assertThat(queued.finish.get(10, TimeUnit.SECONDS)).isEqualTo(FinishReason.ABORT);
            closer.join();
            assertThat(running.terminalCalls).containsExactly("finish ABORT");
            assertThat(queued.terminalCalls).containsExactly("finish ABORT");
            assertThat(decode.stats().numFreeBlocks()).isEqualTo(decode.stats().numTotalBlocks());
            await(() -> prefill.stats().numExported() == 0); // both leases released, not left to expire
        }
    }

    @Test
    void shouldEndEverySequenceAndFreeEveryBlockOnCloseEvenIfASinkThrows() throws Exception {
        // A long context, so that no sequence can end on its own before close().
        try (LlamaModel longContext = GgufModelLoader.load(ReferenceModel.ggufPath(), 4096);
             CpuBackend backend = new CpuBackend(2);
             PrefillEngine prefill = new PrefillEngine("p", longContext, backend, CONFIG)) {
            DecodeEngine decode = new DecodeEngine(longContext, backend, CONFIG, new InProcessKvTransport(prefill));
            SamplingParams longRun = new SamplingParams(0f, 1f, -1, 4096 - prompt.length, null, List.of(), true);
            List<SinkOutcome> sinks = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                SinkOutcome sink = new SinkOutcome(new CountDownLatch(0), true);
                sinks.add(sink);
                assertThat(decode.submit(decodeRequest(prefill, "s" + i, longRun), sink)).isTrue();
            }
            await(() -> decode.stats().numRunning() == 3);

            decode.close();

            for (SinkOutcome sink : sinks) {
                assertThat(sink.terminalCalls).containsExactly("finish ABORT");
            }
            assertThat(decode.stats().numFreeBlocks()).isEqualTo(decode.stats().numTotalBlocks());
            await(() -> prefill.stats().numExported() == 0);
        }
    }

    private DecodeRequest decodeRequest(PrefillEngine prefill, String id) throws Exception {
        return decodeRequest(prefill, id, SamplingParams.greedy(40));
    }

    private DecodeRequest decodeRequest(PrefillEngine prefill, String id, SamplingParams sampling) throws Exception {
        PrefillOutcome outcome = new PrefillOutcome(new CountDownLatch(0));
        prefill.submit(new PrefillRequest(id, prompt, sampling, 0), outcome);
        PrefillResult r = outcome.result.get(30, TimeUnit.SECONDS);
        return new DecodeRequest(id, prompt, r.firstToken(), r.kvHandle(), sampling, 0);
    }

    /**
     * Calls {@code close()} on another thread and, once that thread waits for the engine thread
     * (the engine is told to stop), lets the engine thread out of the callback it is held in.
     */
    private static Thread closeWhileTheEngineThreadIsHeld(AutoCloseable engine, CountDownLatch hold)
            throws Exception {
        Thread closer = new Thread(() -> {
            try {
                engine.close();
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }, "closer");
        closer.start();
        await(() -> closer.getState() == Thread.State.TIMED_WAITING || closer.getState() == Thread.State.WAITING);
        hold.countDown();
        return closer;
    }

    private static void awaitQuietly(CountDownLatch latch) {
        try {
            latch.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void await(BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("condition not met within 30 s");
            }
            Thread.sleep(1);
        }
    }
}
