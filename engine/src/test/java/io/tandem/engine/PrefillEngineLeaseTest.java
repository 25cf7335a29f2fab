package io.tandem.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.tandem.engine.backend.CpuBackend;
import io.tandem.engine.model.GgufModelLoader;
import io.tandem.engine.model.LlamaModel;
import io.tandem.engine.sampling.SamplingParams;
import io.tandem.kvcache.KvDtype;
import io.tandem.kvcache.KvHandle;
import io.tandem.kvcache.transfer.KvTransferStatus;
import java.time.Duration;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Timeout;

/**
 * Leases on exported KV: renewal pushes the deadline, expiry frees the blocks, an unknown lease is
 * not renewed; the KV data plane's lease check answers per epoch, lease and block, and a passed
 * check keeps the lease for another lease timeout.
 */
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
    void shouldCountGrantedRenewedReleasedAndExpiredLeases() throws Exception {
        try (PrefillEngine prefill = newEngine(64)) {
            int[] prompt = ReferenceModel.cases().get(1).promptTokenIds();
            PrefillResult released = prefill(prefill, prompt);
            PrefillResult expiring = prefill(prefill, ReferenceModel.cases().get(2).promptTokenIds());
            assertThat(renew(prefill, released.kvHandle().leaseId())).isTrue();
            assertThat(renew(prefill, released.kvHandle().leaseId())).isTrue();
            prefill.release(released.kvHandle().leaseId());
            prefill.release(released.kvHandle().leaseId()); // a second release of the same lease does not count
            assertThat(renew(prefill, released.kvHandle().leaseId())).isFalse();

            PrefillEngineStatsTest.await(prefill, s -> s.numExported() == 0);
            assertThat(prefill.numLeasesGranted()).isEqualTo(2);
            assertThat(prefill.numLeasesRenewed()).as("only the renewals of a held lease").isEqualTo(2);
            assertThat(prefill.numLeasesReleased()).isEqualTo(1);
            assertThat(prefill.numLeasesExpired()).as("lease %d", expiring.kvHandle().leaseId()).isEqualTo(1);
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

    /** {@code onEngineThread}: {@link PrefillEngine#validateLease}; else {@link PrefillEngine#checkLeaseForPull}. */
    @ParameterizedTest(name = "on the engine thread: {0}")
    @ValueSource(booleans = {true, false})
    void shouldValidateALeaseByEpochLeaseIdAndBlockIds(boolean onEngineThread) throws Exception {
        this.onEngineThread = onEngineThread;
        try (PrefillEngine prefill = newEngine(64)) {
            KvHandle handle = prefill(prefill, storyPrompt(40)).kvHandle();
            int[] blocks = handle.blockIds();
            assertThat(blocks).hasSizeGreaterThan(1);
            long epoch = handle.epoch();
            long leaseId = handle.leaseId();

            assertThat(validate(prefill, epoch, leaseId, blocks)).isEqualTo(KvTransferStatus.OK);
            assertThat(validate(prefill, epoch, leaseId, new int[] {blocks[blocks.length - 1], blocks[0]}))
                    .as("a subset, in any order").isEqualTo(KvTransferStatus.OK);
            assertThat(validate(prefill, epoch + 1, leaseId, blocks)).isEqualTo(KvTransferStatus.STALE_EPOCH);
            assertThat(validate(prefill, epoch, leaseId + 1, blocks)).isEqualTo(KvTransferStatus.UNKNOWN_LEASE);
            int notHeld = blocks[0] == 0 ? blocks[blocks.length - 1] + 1 : 0;
            assertThat(validate(prefill, epoch, leaseId, new int[] {blocks[0], notHeld}))
                    .isEqualTo(KvTransferStatus.BAD_BLOCK_ID);

            prefill.release(leaseId);
            // the release's own counter: published stats may still predate the export
            long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (prefill.numLeasesReleased() == 0 && System.nanoTime() < until) {
                Thread.sleep(1);
            }
            assertThat(prefill.numLeasesReleased()).isEqualTo(1);
            EngineStats released = PrefillEngineStatsTest.await(prefill, s -> s.numExported() == 0);
            assertThat(released.numFreeBlocks()).isEqualTo(released.numTotalBlocks());
            assertThat(validate(prefill, epoch, leaseId, blocks)).as("after release").isEqualTo(KvTransferStatus.UNKNOWN_LEASE);
        }
    }

    @ParameterizedTest(name = "on the engine thread: {0}")
    @ValueSource(booleans = {true, false})
    void shouldKeepALeaseForAnotherLeaseTimeoutAfterEachPassedValidation(boolean onEngineThread) throws Exception {
        this.onEngineThread = onEngineThread;
        try (PrefillEngine prefill = newEngine(64)) {
            KvHandle handle = prefill(prefill, ReferenceModel.cases().get(1).promptTokenIds()).kvHandle();
            long validateUntil = System.nanoTime() + 3 * LEASE_TIMEOUT.toNanos();
            while (System.nanoTime() < validateUntil) {
                assertThat(validate(prefill, handle.epoch(), handle.leaseId(), handle.blockIds())).isEqualTo(KvTransferStatus.OK);
                Thread.sleep(LEASE_TIMEOUT.toMillis() / 5);
            }
            assertThat(prefill.stats().numExported()).as("lease held while pulled").isEqualTo(1);
            PrefillEngineStatsTest.await(prefill, s -> s.numExported() == 0);
            assertThat(validate(prefill, handle.epoch(), handle.leaseId(), handle.blockIds()))
                    .as("after expiry").isEqualTo(KvTransferStatus.UNKNOWN_LEASE);
        }
    }

    @Test
    void shouldReportPromptTokensNotYetComputedAsQueuedPrefillTokens() throws Exception {
        int[] prompt = storyPrompt(200);
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

    /** BOS and the first {@code n} tokens of the bos_only reference story. */
    private static int[] storyPrompt(int n) {
        ReferenceModel.Case story = ReferenceModel.cases().get(0);
        int[] prompt = new int[1 + n];
        prompt[0] = story.promptTokenIds()[0];
        System.arraycopy(story.generatedTokenIds(), 0, prompt, 1, n);
        return prompt;
    }

    private boolean onEngineThread = true;

    private KvTransferStatus validate(PrefillEngine prefill, long epoch, long leaseId, int[] blockIds) throws Exception {
        if (!onEngineThread) {
            return prefill.checkLeaseForPull(epoch, leaseId, blockIds);
        }
        CompletableFuture<KvTransferStatus> validated = new CompletableFuture<>();
        assertThat(prefill.validateLease(epoch, leaseId, blockIds, validated::complete)).isTrue();
        return validated.get(10, TimeUnit.SECONDS);
    }

    /** Prefills one prompt and waits for its result (30 s at most). */
    static PrefillResult prefill(PrefillEngine prefill, int[] prompt) throws Exception {
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
