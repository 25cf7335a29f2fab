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
import java.io.IOException;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.agrona.collections.IntArrayList;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A KV pull that fails (the prefill worker died mid-transfer) ends the request with an error
 * ({@code fail}) or is recomputed on the decode worker with unchanged tokens ({@code recompute}).
 * The failing transport stands in for a dead network peer; releases still reach the prefill engine.
 */
@Timeout(60)
class KvLoadFailurePolicyTest {
    private static LlamaModel model;

    @BeforeAll
    static void load() throws Exception {
        model = GgufModelLoader.load(ReferenceModel.ggufPath(), 0);
    }

    @AfterAll
    static void close() {
        model.close();
    }

    /** Fails every pull as a broken connection would; releases go through. */
    private static final class FailingTransport implements KvTransport {
        final KvTransport delegate;
        final AtomicInteger releases = new AtomicInteger();

        FailingTransport(KvTransport delegate) {
            this.delegate = delegate;
        }

        @Override
        public CompletableFuture<Void> pull(KvHandle handle, KvCacheStorage dst, int[] dstBlockIds) {
            return CompletableFuture.failedFuture(new IOException("connection reset by peer " + handle.workerId()));
        }

        @Override
        public void renew(KvHandle handle) {
            delegate.renew(handle);
        }

        @Override
        public void release(KvHandle handle) {
            releases.incrementAndGet();
            delegate.release(handle);
        }
    }

    private static EngineConfig config(KvLoadFailurePolicy policy) {
        return new EngineConfig(16, KvDtype.F32, 64L << 20, 8, 64, 1024, Duration.ofSeconds(30), true, policy);
    }

    private static CompletableFuture<int[]> generate(PrefillEngine prefill, DecodeEngine decode, ReferenceModel.Case rc) {
        CompletableFuture<int[]> done = new CompletableFuture<>();
        IntArrayList out = new IntArrayList();
        SamplingParams greedy = SamplingParams.greedy(rc.generatedTokenIds().length);
        prefill.submit(new PrefillRequest(rc.name(), rc.promptTokenIds(), greedy, 0), new PrefillCallback() {
            @Override
            public void onPrefilled(PrefillResult r) {
                out.addInt(r.firstToken());
                decode.submit(new DecodeRequest(rc.name(), rc.promptTokenIds(), r.firstToken(), r.kvHandle(), greedy, 0),
                        new TokenSink() {
                            @Override
                            public void onToken(int tokenId) {
                                out.addInt(tokenId);
                            }

                            @Override
                            public void onFinish(FinishReason reason) {
                                done.complete(out.toIntArray());
                            }

                            @Override
                            public void onError(Throwable error) {
                                done.completeExceptionally(error);
                            }
                        });
            }

            @Override
            public void onFailed(Throwable error) {
                done.completeExceptionally(error);
            }
        });
        return done;
    }

    @Test
    void shouldRecomputeThePromptLocallyAndProduceTheReferenceTokens() throws Exception {
        try (CpuBackend backend = new CpuBackend(2);
             PrefillEngine prefill = new PrefillEngine("p", model, backend, config(KvLoadFailurePolicy.RECOMPUTE))) {
            FailingTransport transport = new FailingTransport(new InProcessKvTransport(prefill));
            try (DecodeEngine decode = new DecodeEngine(model, backend, config(KvLoadFailurePolicy.RECOMPUTE), transport)) {
                for (ReferenceModel.Case rc : ReferenceModel.cases()) {
                    assertThat(generate(prefill, decode, rc).get(30, TimeUnit.SECONDS)).as(rc.name())
                            .containsExactly(rc.generatedTokenIds());
                }
                assertThat(decode.numKvLoadRecomputes()).isEqualTo(3);
                assertThat(transport.releases).hasValue(3);
                awaitAllFree(prefill.stats(), decode);
            }
        }
    }

    @Test
    void shouldEndTheRequestWithAnErrorNamingTheHandOffUnderPolicyFail() throws Exception {
        try (CpuBackend backend = new CpuBackend(2);
             PrefillEngine prefill = new PrefillEngine("p", model, backend, config(KvLoadFailurePolicy.FAIL))) {
            FailingTransport transport = new FailingTransport(new InProcessKvTransport(prefill));
            try (DecodeEngine decode = new DecodeEngine(model, backend, config(KvLoadFailurePolicy.FAIL), transport)) {
                CompletableFuture<int[]> f = generate(prefill, decode, ReferenceModel.cases().get(1));
                assertThatThrownBy(() -> f.get(30, TimeUnit.SECONDS)).isInstanceOf(ExecutionException.class)
                        .hasMessageContaining("KV hand-off failed for once_upon_a_time")
                        .hasMessageContaining("connection reset by peer p");
                assertThat(transport.releases).hasValue(1);
                awaitAllFree(prefill.stats(), decode);
            }
        }
    }

    private static void awaitAllFree(EngineStats ignored, DecodeEngine decode) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (decode.stats().numFreeBlocks() != decode.stats().numTotalBlocks()) {
            assertThat(System.nanoTime()).as("decode blocks free: %s", decode.stats()).isLessThan(deadline);
            Thread.sleep(1);
        }
    }
}
