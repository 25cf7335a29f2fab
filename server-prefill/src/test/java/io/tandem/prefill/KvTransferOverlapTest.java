package io.tandem.prefill;

import static org.assertj.core.api.Assertions.assertThat;

import io.tandem.engine.DecodeEngine;
import io.tandem.engine.DecodeRequest;
import io.tandem.engine.EngineConfig;
import io.tandem.engine.EngineStats;
import io.tandem.engine.FinishReason;
import io.tandem.engine.KvLoadFailurePolicy;
import io.tandem.engine.LlamaCppOutput;
import io.tandem.engine.PrefillCallback;
import io.tandem.engine.PrefillEngine;
import io.tandem.engine.PrefillRequest;
import io.tandem.engine.PrefillResult;
import io.tandem.engine.ReferenceModel;
import io.tandem.engine.TokenSink;
import io.tandem.engine.backend.CpuBackend;
import io.tandem.engine.model.GgufModelLoader;
import io.tandem.engine.model.LlamaModel;
import io.tandem.engine.sampling.SamplingParams;
import io.tandem.kvcache.KvCacheSpec;
import io.tandem.kvcache.KvCacheStorage;
import io.tandem.kvcache.KvDtype;
import io.tandem.kvcache.KvHandle;
import io.tandem.kvcache.transfer.KvPageServer;
import io.tandem.kvcache.transfer.KvTransferException;
import io.tandem.kvcache.transfer.KvTransferStatus;
import io.tandem.kvcache.transfer.NettyKvTransport;
import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The KV transfer overlapping the prefill, with the real parts on loopback: a {@link PrefillEngine}
 * (stories260K, chunked prefill of 16 tokens a step, so the longest reference prompt takes nine
 * steps) handing out its handle early, the {@link KvPageServer} over {@link PrefillPageProvider},
 * and a decode side pulling through {@link NettyKvTransport}. The prefill is held between steps
 * ({@link PrefillEngine#pauseScheduling}) right after its first chunk, so what happens while it
 * computes is certain, not a race.
 */
@Timeout(60)
class KvTransferOverlapTest {
    private static final int BLOCK_SIZE = 16;
    private static final Duration KV_TRANSFER_TIMEOUT = Duration.ofSeconds(30);
    private static LlamaModel model;
    private static CpuBackend backend;
    /** The longest llama.cpp reference prompt (136 tokens: nine chunks) and its greedy continuation. */
    private static LlamaCppOutput longest;
    private static int[] expectedTokens;
    private PrefillEngine prefill;
    private KvPageServer server;
    private NettyKvTransport transport;

    @BeforeAll
    static void load() throws Exception {
        model = GgufModelLoader.load(ReferenceModel.ggufPath(), 0);
        backend = new CpuBackend(1);
        longest = LlamaCppOutput.read("stories260K-prompts.jsonl", 64).stream()
                .max(Comparator.comparingInt(c -> c.promptTokens().length)).orElseThrow();
        expectedTokens = longest.tandemTokens(model.tokenizer().eosId());
    }

    @AfterAll
    static void close() {
        backend.close();
        model.close();
    }

    @BeforeEach
    void start() {
        prefill = new PrefillEngine("prefill-overlap", model, backend, config(BLOCK_SIZE));
        server = new KvPageServer(new PrefillPageProvider(prefill, java.time.Duration.ZERO), 1).start("127.0.0.1", 0);
        transport = new NettyKvTransport(workerId -> new InetSocketAddress("127.0.0.1", server.port()),
                KV_TRANSFER_TIMEOUT, 64L << 20, 1);
    }

    @AfterEach
    void stop() {
        transport.close();
        server.close();
        prefill.close();
    }

    /** Prefill side: 16 tokens a step. */
    private static EngineConfig config(int maxNumBatchedTokens) {
        return new EngineConfig(BLOCK_SIZE, KvDtype.F32, 64L << 20, 8, maxNumBatchedTokens, 1024, Duration.ofSeconds(60));
    }

    @Test
    void shouldSendEveryLayersFinishedBlocksWhileThePrefillStillComputesAndOnlyFinalPages() throws Exception {
        int[] prompt = longest.promptTokens();
        assertThat(prompt.length).as("a prompt of several chunks").isGreaterThan(4 * BLOCK_SIZE);
        Outcome outcome = new Outcome(prefill);
        assertThat(prefill.submit(new PrefillRequest("overlap", prompt, SamplingParams.greedy(4), 0L, null, true),
                outcome)).isTrue();
        KvHandle handle = outcome.handle.get(10, TimeUnit.SECONDS);
        KvCacheSpec spec = handle.spec();
        assertThat(handle.numTokens()).isEqualTo(prompt.length);
        assertThat(handle.blockIds()).hasSize(spec.blocksFor(prompt.length));
        try (KvCacheStorage dst = new KvCacheStorage(spec, handle.blockIds().length)) {
            int[] dstBlocks = range(handle.blockIds().length);
            CompletableFuture<Void> pull = transport.pull(handle, dst, dstBlocks);

            // Held after its first chunk: block 0 is final in every layer, nothing else is.
            await(() -> server.pagesSentWhileComputing() == spec.numLayers(), "block 0 of every layer sent");
            assertThat(outcome.result).as("the prefill has not finished").isNotDone();
            assertThat(pull).as("the later blocks wait for the prefill").isNotDone();
            assertThat(prefill.progress(handle.epoch(), handle.leaseId()).numComputedTokens(spec.numLayers() - 1))
                    .isEqualTo(BLOCK_SIZE);

            prefill.resumeScheduling();
            pull.get(KV_TRANSFER_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
            PrefillResult result = outcome.result.get(10, TimeUnit.SECONDS);
            // the early handle's lease and pages, now with the summaries of the keys computed since
            assertThat(result.kvHandle().leaseId()).isEqualTo(handle.leaseId());
            assertThat(result.kvHandle().blockIds()).isEqualTo(handle.blockIds());
            assertThat(handle.pageSummaries()).isNull();
            assertThat(result.kvHandle().pageSummaries()).isNotNull();
            assertThat(result.firstToken()).isEqualTo(expectedTokens[0]);
            assertThat(server.pagesSentWhileComputing()).as("pages sent before the last chunk was computed")
                    .isGreaterThanOrEqualTo(spec.numLayers());
            // Every page sent, early ones included, is the final KV the prefill left in its cache.
            for (int layer = 0; layer < spec.numLayers(); layer++) {
                for (int i = 0; i < dstBlocks.length; i++) {
                    MemorySegment sent = dst.layer(layer).asSlice(dst.pageOffset(dstBlocks[i]), spec.pageBytes());
                    MemorySegment source = prefill.storage().layer(layer)
                            .asSlice(prefill.storage().pageOffset(handle.blockIds()[i]), spec.pageBytes());
                    assertThat(sent.mismatch(source)).as("layer %d block %d", layer, i).isEqualTo(-1L);
                }
            }
        }
        prefill.release(handle.leaseId());
        awaitAllFree(prefill::stats);
    }

    @Test
    void shouldAnswerAPullsLeaseCheckWhileTheEngineThreadIsBusy() throws Exception {
        PrefillPageProvider provider = new PrefillPageProvider(prefill, Duration.ZERO);
        CompletableFuture<KvTransferStatus> checkedOnEngineThread = new CompletableFuture<>();
        Outcome outcome = new Outcome(prefill) {
            @Override
            public void onKvHandle(KvHandle h) {
                // the engine thread is inside its step here: a check that needed it could not answer
                KvTransferStatus status = provider.validate(h.epoch(), h.leaseId(), h.blockIds())
                        .toCompletableFuture().getNow(null);
                super.onKvHandle(h); // pauses scheduling: it must come before the test thread resumes it
                checkedOnEngineThread.complete(status);
            }
        };
        assertThat(prefill.submit(new PrefillRequest("busy", longest.promptTokens(), SamplingParams.greedy(4), 0L, null,
                true), outcome)).isTrue();
        assertThat(checkedOnEngineThread.get(10, TimeUnit.SECONDS)).isEqualTo(KvTransferStatus.OK);
        prefill.resumeScheduling();
        KvHandle handle = outcome.result.get(30, TimeUnit.SECONDS).kvHandle();
        prefill.release(handle.leaseId());
    }

    @Test
    void shouldGenerateTheReferenceContinuationWhenDecodeStartsOnTheEarlyHandle() throws Exception {
        int[] prompt = longest.promptTokens();
        int n = longest.tandemMaxTokens();
        SamplingParams greedy = SamplingParams.greedy(n);
        try (DecodeEngine decode = new DecodeEngine(model, backend, config(256), transport)) {
            Tokens tokens = new Tokens();
            Outcome outcome = new Outcome(prefill) {
                @Override
                public void onKvHandle(KvHandle handle) {
                    super.onKvHandle(handle);
                    decode.submit(new DecodeRequest("story", prompt, DecodeRequest.FIRST_TOKEN_PENDING, handle, greedy, 0L),
                            tokens);
                }

                @Override
                public void onPrefilled(PrefillResult result) {
                    super.onPrefilled(result);
                    decode.provideFirstToken("story", result.firstToken(), result.kvHandle().pageSummaries());
                }
            };
            prefill.submit(new PrefillRequest("story", prompt, greedy, 0L, null, true), outcome);
            KvHandle handle = outcome.handle.get(10, TimeUnit.SECONDS);
            await(() -> server.pagesSentWhileComputing() > 0, "pages sent while the prefill is held");
            prefill.resumeScheduling();

            List<Integer> generated = new ArrayList<>();
            generated.add(outcome.result.get(10, TimeUnit.SECONDS).firstToken());
            assertThat(tokens.end.get(30, TimeUnit.SECONDS)).isNotNull();
            generated.addAll(tokens.ids);
            assertThat(generated).containsExactlyElementsOf(boxed(expectedTokens));
            assertThat(decode.numPageSummariesReceived()).as("summaries kept with the sequence, from the first token")
                    .isEqualTo(1);
            awaitAllFree(decode::stats);
            awaitAllFree(prefill::stats);
            assertThat(prefill.progress(handle.epoch(), handle.leaseId())).as("lease released by the decode side").isNull();
        }
    }

    /** Under either KV load failure policy: a prefill that ended leaves nothing to recompute for. */
    @ParameterizedTest
    @EnumSource(KvLoadFailurePolicy.class)
    void shouldEndThePullWithATerminalErrorAndFreeBothSidesWhenThePrefillIsCancelledAfterTheEarlyHandle(
            KvLoadFailurePolicy policy) throws Exception {
        int[] prompt = longest.promptTokens();
        EngineConfig decodeConfig = new EngineConfig(BLOCK_SIZE, KvDtype.F32, 64L << 20, 8, 256, 1024,
                Duration.ofSeconds(60), false, policy);
        try (DecodeEngine decode = new DecodeEngine(model, backend, decodeConfig, transport)) {
            Tokens tokens = new Tokens();
            Outcome outcome = new Outcome(prefill);
            prefill.submit(new PrefillRequest("doomed", prompt, SamplingParams.greedy(8), 0L, null, true), outcome);
            KvHandle handle = outcome.handle.get(10, TimeUnit.SECONDS);
            decode.submit(new DecodeRequest("doomed", prompt, DecodeRequest.FIRST_TOKEN_PENDING, handle,
                    SamplingParams.greedy(8), 0L), tokens);
            await(() -> server.pagesSentWhileComputing() > 0, "the decode side pulling while the prefill is held");

            prefill.cancel("doomed");

            assertThat(outcome.failure.get(10, TimeUnit.SECONDS)).isInstanceOf(CancellationException.class);
            Throwable error = tokens.error.get(KV_TRANSFER_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
            assertThat(error).hasMessageContaining("KV hand-off failed");
            assertThat(error.getCause()).isInstanceOf(KvTransferException.class);
            assertThat(((KvTransferException) error.getCause()).status()).as("ended by the prefill, not by a timeout")
                    .isEqualTo(KvTransferStatus.PREFILL_ABORTED);
            assertThat(tokens.ids).isEmpty();
            awaitAllFree(decode::stats);
            EngineStats prefillStats = awaitAllFree(prefill::stats);
            assertThat(prefillStats.numExported()).isZero();
            assertThat(prefill.progress(handle.epoch(), handle.leaseId())).isNull();
        }
    }

    @Test
    void shouldCancelThePrefillWhenTheEarlyLeaseIsReleasedBeforeItFinishes() throws Exception {
        Outcome outcome = new Outcome(prefill);
        prefill.submit(new PrefillRequest("dropped", longest.promptTokens(), SamplingParams.greedy(8), 0L, null, true),
                outcome);
        KvHandle handle = outcome.handle.get(10, TimeUnit.SECONDS);

        transport.release(handle);

        assertThat(outcome.failure.get(10, TimeUnit.SECONDS)).isInstanceOf(CancellationException.class)
                .hasMessageContaining("released before its prefill finished");
        assertThat(awaitAllFree(prefill::stats).numExported()).isZero();
    }

    /** A prefill's callbacks; the early handle holds the engine after the first chunk. */
    private static class Outcome implements PrefillCallback {
        final CompletableFuture<KvHandle> handle = new CompletableFuture<>();
        final CompletableFuture<PrefillResult> result = new CompletableFuture<>();
        final CompletableFuture<Throwable> failure = new CompletableFuture<>();
        private final PrefillEngine engine;

        Outcome(PrefillEngine engine) {
            this.engine = engine;
        }

        @Override
        public void onKvHandle(KvHandle h) {
            engine.pauseScheduling(); // the step that allocated the blocks still runs: one chunk
            handle.complete(h);
        }

        @Override
        public void onPrefilled(PrefillResult r) {
            result.complete(r);
        }

        @Override
        public void onFailed(Throwable error) {
            failure.complete(error);
        }
    }

    private static final class Tokens implements TokenSink {
        final List<Integer> ids = new java.util.concurrent.CopyOnWriteArrayList<>();
        final CompletableFuture<FinishReason> end = new CompletableFuture<>();
        final CompletableFuture<Throwable> error = new CompletableFuture<>();

        @Override
        public void onToken(int tokenId) {
            ids.add(tokenId);
        }

        @Override
        public void onFinish(FinishReason reason) {
            end.complete(reason);
        }

        @Override
        public void onError(Throwable e) {
            error.complete(e);
        }
    }

    private static EngineStats awaitAllFree(Supplier<EngineStats> stats) throws InterruptedException {
        await(() -> stats.get().numFreeBlocks() == stats.get().numTotalBlocks() && stats.get().numExported() == 0,
                "every KV block free");
        return stats.get();
    }

    private static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("never happened: " + what);
            }
            Thread.sleep(1);
        }
    }

    private static int[] range(int n) {
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = i;
        }
        return ids;
    }

    private static List<Integer> boxed(int[] ids) {
        return java.util.Arrays.stream(ids).boxed().toList();
    }
}
