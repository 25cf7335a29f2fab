package io.tandem.decode;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tandem.engine.EngineConfig;
import io.tandem.engine.EngineStats;
import io.tandem.engine.InProcessKvTransport;
import io.tandem.engine.PrefillCallback;
import io.tandem.engine.PrefillEngine;
import io.tandem.engine.PrefillRequest;
import io.tandem.engine.PrefillResult;
import io.tandem.engine.ReferenceModel;
import io.tandem.engine.backend.CpuBackend;
import io.tandem.engine.model.GgufModelLoader;
import io.tandem.engine.model.LlamaModel;
import io.tandem.engine.sampling.SamplingParams;
import io.tandem.kvcache.KvDtype;
import io.tandem.kvcache.KvHandle;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A held handle's lease outlives the prefill engine's lease timeout while renewed, and is freed by
 * the release, which also ends the renewals; a lease nobody holds expires. Real prefill engine
 * (stories260K) behind the in-process transport; 1 s leases renewed every 200 ms.
 */
@Timeout(60)
class LeaseRenewingTransportTest {
    private static final Duration LEASE_TIMEOUT = Duration.ofSeconds(1);
    private static final Duration RENEW_INTERVAL = Duration.ofMillis(200);
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

    @Test
    void shouldKeepAHeldLeasePastTheLeaseTimeoutUntilItIsReleased() throws Exception {
        AtomicInteger renewalsSent = new AtomicInteger();
        try (PrefillEngine prefill = newEngine();
             LeaseRenewingTransport transport = new LeaseRenewingTransport(new InProcessKvTransport(prefill), RENEW_INTERVAL,
                     renewalsSent::addAndGet)) {
            KvHandle handle = prefill(prefill).kvHandle();
            transport.hold(handle);
            long held = System.nanoTime();

            // three lease timeouts' worth of renewals
            await(() -> prefill.numLeasesRenewed() >= 3 * LEASE_TIMEOUT.dividedBy(RENEW_INTERVAL), "renewals");
            assertThat(Duration.ofNanos(System.nanoTime() - held)).isGreaterThan(LEASE_TIMEOUT.multipliedBy(2));
            assertThat(prefill.stats().numExported()).as("still leased").isEqualTo(1);
            assertThat(prefill.numLeasesExpired()).isZero();
            assertThat(renewalsSent.get()).isGreaterThanOrEqualTo((int) prefill.numLeasesRenewed());
            assertThat(transport.numHeld()).isEqualTo(1);

            transport.release(handle);
            assertThat(transport.numHeld()).isZero();
            await(() -> prefill.stats().numExported() == 0, "the release");
            EngineStats freed = prefill.stats();
            assertThat(freed.numFreeBlocks()).isEqualTo(freed.numTotalBlocks());
            assertThat(prefill.numLeasesReleased()).isEqualTo(1);
            int sentAtRelease = renewalsSent.get();
            long renewedAtRelease = prefill.numLeasesRenewed();
            // a renewal already on its way may land; none is sent after the release
            PrefillResult other = prefill(prefill);
            await(() -> prefill.numLeasesExpired() == 1, "the unheld lease's expiry");
            assertThat(renewalsSent.get()).isEqualTo(sentAtRelease);
            assertThat(prefill.numLeasesRenewed()).isEqualTo(renewedAtRelease);
            assertThat(other.kvHandle().leaseId()).isNotEqualTo(handle.leaseId());
        }
    }

    @Test
    void shouldRefuseANonPositiveInterval() {
        try (PrefillEngine prefill = newEngine()) {
            assertThatThrownBy(() -> new LeaseRenewingTransport(new InProcessKvTransport(prefill), Duration.ZERO, n -> { }))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("PT0S");
        }
    }

    private static PrefillEngine newEngine() {
        return new PrefillEngine("prefill-renew", model, backend,
                new EngineConfig(16, KvDtype.F32, 64L << 20, 8, 64, 1024, LEASE_TIMEOUT));
    }

    private static PrefillResult prefill(PrefillEngine prefill) throws Exception {
        CompletableFuture<PrefillResult> result = new CompletableFuture<>();
        assertThat(prefill.submit(new PrefillRequest("renew", ReferenceModel.cases().get(1).promptTokenIds(),
                SamplingParams.greedy(4), 0), new PrefillCallback() {
            @Override
            public void onPrefilled(PrefillResult r) {
                result.complete(r);
            }

            @Override
            public void onFailed(Throwable error) {
                result.completeExceptionally(error);
            }
        })).isTrue();
        return result.get(30, TimeUnit.SECONDS);
    }

    private static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(10);
        }
    }
}
