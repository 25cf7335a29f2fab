package io.tandem.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tandem.engine.backend.CpuBackend;
import io.tandem.engine.model.GgufModelLoader;
import io.tandem.engine.model.LlamaModel;
import io.tandem.engine.sampling.SamplingParams;
import io.tandem.kvcache.KvCacheStorage;
import io.tandem.kvcache.KvDtype;
import io.tandem.kvcache.KvHandle;
import io.tandem.kvcache.transfer.KvTransport;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.agrona.collections.IntArrayList;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The decode engine on its own, fed handles from a real prefill engine (stories260K, greedy): what
 * it does with a request that is already complete when it arrives, and with a sink or a transport
 * that throws — one broken request must not take the batch or the engine with it.
 */
@Timeout(60)
class DecodeEngineTest {
    private static final EngineConfig CONFIG =
            new EngineConfig(16, KvDtype.F32, 64L << 20, 8, 64, 1024, Duration.ofSeconds(30));
    private static LlamaModel model;
    private static ReferenceModel.Case reference;

    @BeforeAll
    static void load() throws Exception {
        model = GgufModelLoader.load(ReferenceModel.ggufPath(), 0);
        reference = ReferenceModel.cases().get(1);
    }

    @AfterAll
    static void close() {
        model.close();
    }

    /** Collects a sink's tokens; optionally throws from its first {@code onToken}. */
    private static final class Collector implements TokenSink {
        final IntArrayList tokens = new IntArrayList();
        final CompletableFuture<FinishReason> finish = new CompletableFuture<>();
        final boolean throwOnToken;

        Collector(boolean throwOnToken) {
            this.throwOnToken = throwOnToken;
        }

        @Override
        public void onToken(int tokenId) {
            tokens.addInt(tokenId);
            if (throwOnToken) {
                throw new IllegalStateException("client went away mid-write");
            }
        }

        @Override
        public void onFinish(FinishReason reason) {
            finish.complete(reason);
        }

        @Override
        public void onError(Throwable error) {
            finish.completeExceptionally(error);
        }
    }

    @Test
    void shouldFinishWithLengthAndNoTokenWhenTheFirstTokenAlreadyReachesMaxTokens() throws Exception {
        try (CpuBackend backend = new CpuBackend(2);
             PrefillEngine prefill = new PrefillEngine("p", model, backend, CONFIG);
             DecodeEngine decode = new DecodeEngine(model, backend, CONFIG, new InProcessKvTransport(prefill))) {
            Collector sink = new Collector(false);
            decode.submit(decodeRequest(prefill, "one", SamplingParams.greedy(1), -1), sink);

            assertThat(sink.finish.get(30, TimeUnit.SECONDS)).isEqualTo(FinishReason.LENGTH);
            assertThat(sink.tokens.toIntArray()).isEmpty();
            awaitAllFree(prefill, decode);
        }
    }

    @Test
    void shouldFinishWithStopAndNoTokenWhenTheFirstTokenEndsTheSequence() throws Exception {
        try (CpuBackend backend = new CpuBackend(2);
             PrefillEngine prefill = new PrefillEngine("p", model, backend, CONFIG);
             DecodeEngine decode = new DecodeEngine(model, backend, CONFIG, new InProcessKvTransport(prefill))) {
            Collector sink = new Collector(false);
            int eos = model.tokenizer().eosId();
            decode.submit(decodeRequest(prefill, "eos", SamplingParams.greedy(16), eos), sink);

            assertThat(sink.finish.get(30, TimeUnit.SECONDS)).isEqualTo(FinishReason.STOP);
            assertThat(sink.tokens.toIntArray()).isEmpty();
            awaitAllFree(prefill, decode);
        }
    }

    @Test
    void shouldEndOnlyTheSequenceWhoseSinkThrowsAndKeepDecodingTheOthers() throws Exception {
        try (CpuBackend backend = new CpuBackend(2);
             PrefillEngine prefill = new PrefillEngine("p", model, backend, CONFIG);
             DecodeEngine decode = new DecodeEngine(model, backend, CONFIG, new InProcessKvTransport(prefill))) {
            int n = reference.generatedTokenIds().length;
            Collector broken = new Collector(true);
            Collector healthy = new Collector(false);
            // Same step for both, the broken one first in the batch.
            DecodeRequest first = decodeRequest(prefill, "broken", SamplingParams.greedy(n), -1);
            DecodeRequest second = decodeRequest(prefill, "healthy", SamplingParams.greedy(n), -1);
            decode.submit(first, broken);
            decode.submit(second, healthy);

            assertThatThrownBy(() -> broken.finish.get(30, TimeUnit.SECONDS)).isInstanceOf(ExecutionException.class)
                    .hasMessageContaining("client went away mid-write");
            assertThat(broken.tokens.size()).isEqualTo(1);
            assertThat(healthy.finish.get(30, TimeUnit.SECONDS)).isEqualTo(FinishReason.LENGTH);
            IntArrayList all = new IntArrayList();
            all.addInt(second.firstToken());
            all.addAll(healthy.tokens);
            assertThat(all.toIntArray()).containsExactly(reference.generatedTokenIds());
            awaitAllFree(prefill, decode);
        }
    }

    @Test
    void shouldApplyTheKvLoadFailurePolicyWhenTheTransportThrowsInsteadOfReturningAFailedPull() throws Exception {
        try (CpuBackend backend = new CpuBackend(2);
             PrefillEngine prefill = new PrefillEngine("p", model, backend, CONFIG)) {
            KvTransport inProcess = new InProcessKvTransport(prefill);
            KvTransport throwsOnce = new KvTransport() {
                boolean thrown;

                @Override
                public CompletableFuture<Void> pull(KvHandle handle, KvCacheStorage dst, int[] dstBlockIds) {
                    if (!thrown) {
                        thrown = true;
                        throw new IllegalStateException("resolver has no address for " + handle.workerId());
                    }
                    return inProcess.pull(handle, dst, dstBlockIds);
                }

                @Override
                public void release(KvHandle handle) {
                    inProcess.release(handle);
                }
            };
            try (DecodeEngine decode = new DecodeEngine(model, backend, CONFIG, throwsOnce)) {
                int n = reference.generatedTokenIds().length;
                Collector failed = new Collector(false);
                decode.submit(decodeRequest(prefill, "failed", SamplingParams.greedy(n), -1), failed);
                assertThatThrownBy(() -> failed.finish.get(30, TimeUnit.SECONDS)).isInstanceOf(ExecutionException.class)
                        .hasMessageContaining("KV hand-off failed for failed")
                        .hasMessageContaining("resolver has no address for p");

                Collector next = new Collector(false);
                DecodeRequest request = decodeRequest(prefill, "next", SamplingParams.greedy(n), -1);
                decode.submit(request, next);
                assertThat(next.finish.get(30, TimeUnit.SECONDS)).isEqualTo(FinishReason.LENGTH);
                assertThat(next.tokens.size()).isEqualTo(n - 1);
                awaitAllFree(prefill, decode);
            }
        }
    }

    /**
     * Prefills the reference prompt and builds the decode request for it.
     *
     * @param firstToken the first token to hand over, or -1 for the one the prefill sampled
     */
    private static DecodeRequest decodeRequest(PrefillEngine prefill, String id, SamplingParams sampling, int firstToken)
            throws Exception {
        CompletableFuture<PrefillResult> result = new CompletableFuture<>();
        prefill.submit(new PrefillRequest(id, reference.promptTokenIds(), sampling, 0), new PrefillCallback() {
            @Override
            public void onPrefilled(PrefillResult r) {
                result.complete(r);
            }

            @Override
            public void onFailed(Throwable error) {
                result.completeExceptionally(error);
            }
        });
        PrefillResult r = result.get(30, TimeUnit.SECONDS);
        int first = firstToken >= 0 ? firstToken : r.firstToken();
        return new DecodeRequest(id, reference.promptTokenIds(), first, r.kvHandle(), sampling, 0);
    }

    private static void awaitAllFree(PrefillEngine prefill, DecodeEngine decode) throws InterruptedException {
        await(() -> prefill.stats().numExported() == 0
                && prefill.stats().numFreeBlocks() == prefill.stats().numTotalBlocks()
                && decode.stats().numFreeBlocks() == decode.stats().numTotalBlocks()
                && decode.stats().numRunning() + decode.stats().numWaiting() == 0);
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
