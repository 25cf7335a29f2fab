package io.tandem.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.tandem.engine.backend.CpuBackend;
import io.tandem.engine.model.GgufModelLoader;
import io.tandem.engine.model.LlamaModel;
import io.tandem.engine.sampling.SamplingParams;
import io.tandem.kvcache.KvDtype;
import java.time.Duration;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Leases on exported KV: renewal pushes the deadline, expiry frees the blocks, an unknown lease is not renewed. */
@Timeout(60)
class PrefillEngineLeaseTest {
    private static final Duration LEASE_TIMEOUT = Duration.ofSeconds(1);
    private static LlamaModel model;
    private static CpuBackend backend;

    @BeforeAll
    static void load() throws Exception {
        model = GgufModelLoader.load(ReferenceModel.ggufPath(), 0);
        backend = new CpuBackend(1);
    }

    @AfterAll
    static void close() {
        backend.close();
        model.close();
    }

    private static PrefillEngine newEngine(int maxNumBatchedTokens) {
        return new PrefillEngine("prefill-lease", model, backend,
                new EngineConfig(16, KvDtype.F32, 64L << 20, 8, maxNumBatchedTokens, 1024, LEASE_TIMEOUT));
    }

    @Test
    void shouldKeepRenewedBlocksPastTheLeaseTimeoutThenFreeThemAtExpiry() throws Exception {
        try (PrefillEngine prefill = newEngine(64)) {
            PrefillResult result = prefill(prefill, ReferenceModel.cases().get(1).promptTokenIds());
            long leaseId = result.kvHandle().leaseId();
            long renewUntil = System.nanoTime() + 3 * LEASE_TIMEOUT.toNanos();
            while (System.nanoTime() < renewUntil) {
                assertThat(renew(prefill, leaseId)).as("renewal of a held lease").isTrue();
                assertThat(prefill.stats().numExported()).as("lease held while renewed").isEqualTo(1);
                Thread.sleep(LEASE_TIMEOUT.toMillis() / 5);
            }
            EngineStats expired = PrefillEngineStatsTest.await(prefill, s -> s.numExported() == 0);
            assertThat(expired.numFreeBlocks()).isEqualTo(expired.numTotalBlocks());
            assertThat(renew(prefill, leaseId)).as("renewal of an expired lease").isFalse();
        }
    }

    @Test
    void shouldNotRenewAReleasedOrUnknownLease() throws Exception {
        try (PrefillEngine prefill = newEngine(64)) {
            PrefillResult result = prefill(prefill, ReferenceModel.cases().get(1).promptTokenIds());
            prefill.release(result.kvHandle().leaseId());
            assertThat(renew(prefill, result.kvHandle().leaseId())).isFalse();
            assertThat(renew(prefill, 12345)).isFalse();
            assertThat(prefill.stats().numExported()).isZero();
        }
    }

    @Test
    void shouldReportPromptTokensNotYetComputedAsQueuedPrefillTokens() throws Exception {
        ReferenceModel.Case story = ReferenceModel.cases().get(0);
        int[] prompt = new int[1 + 200];
        prompt[0] = story.promptTokenIds()[0];
        System.arraycopy(story.generatedTokenIds(), 0, prompt, 1, 200);
        int chunk = 4;
        try (PrefillEngine prefill = newEngine(chunk)) {
            assertThat(prefill.stats().numQueuedPrefillTokens()).isZero();
            CompletableFuture<PrefillResult> done = submit(prefill, prompt);
            // 51 chunks: spin on the published snapshot and check every one seen between chunks
            Set<Long> queuedMidway = new TreeSet<>();
            while (!done.isDone()) {
                EngineStats s = prefill.stats();
                if (s.numRunning() == 1) {
                    queuedMidway.add(s.numQueuedPrefillTokens());
                }
            }
            assertThat(queuedMidway).as("snapshots between chunks").isNotEmpty().allSatisfy(queued -> {
                assertThat(queued).isPositive().isLessThan(prompt.length);
                assertThat((prompt.length - queued) % chunk).as("whole chunks computed").isZero();
            });
            PrefillResult result = done.get(30, TimeUnit.SECONDS);
            assertThat(PrefillEngineStatsTest.await(prefill, s -> s.numExported() == 1).numQueuedPrefillTokens()).isZero();
            prefill.release(result.kvHandle().leaseId());
        }
    }

    private static boolean renew(PrefillEngine prefill, long leaseId) throws Exception {
        CompletableFuture<Boolean> renewed = new CompletableFuture<>();
        assertThat(prefill.renew(leaseId, renewed::complete)).isTrue();
        return renewed.get(10, TimeUnit.SECONDS);
    }

    private static PrefillResult prefill(PrefillEngine prefill, int[] prompt) throws Exception {
        return submit(prefill, prompt).get(30, TimeUnit.SECONDS);
    }

    private static CompletableFuture<PrefillResult> submit(PrefillEngine prefill, int[] prompt) {
        CompletableFuture<PrefillResult> prefilled = new CompletableFuture<>();
        assertThat(prefill.submit(new PrefillRequest("lease", prompt, SamplingParams.greedy(4), 0), new PrefillCallback() {
            @Override
            public void onPrefilled(PrefillResult result) {
                prefilled.complete(result);
            }

            @Override
            public void onFailed(Throwable error) {
                prefilled.completeExceptionally(error);
            }
        })).isTrue();
        return prefilled;
    }
}
