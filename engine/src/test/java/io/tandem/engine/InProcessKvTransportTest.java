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
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The in-memory hand-off reads the prefill engine's blocks only under a live lease: once a lease is
 * released or expired its blocks are free and may hold another prompt, so a pull must fail (and the
 * decode side apply its kv-load-failure policy) instead of copying whatever is there now.
 */
@Timeout(60)
class InProcessKvTransportTest {
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

    private static EngineConfig config(Duration leaseTimeout) {
        return new EngineConfig(16, KvDtype.F32, 64L << 20, 8, 64, 1024, leaseTimeout);
    }

    @Test
    void shouldCopyThePagesOfALiveLease() throws Exception {
        try (CpuBackend backend = new CpuBackend(2);
             PrefillEngine prefill = new PrefillEngine("p", model, backend, config(Duration.ofSeconds(30)))) {
            KvHandle handle = prefill(prefill, "live");
            try (KvCacheStorage dst = new KvCacheStorage(handle.spec(), 4)) {
                int[] dstBlocks = {3};

                new InProcessKvTransport(prefill).pull(handle, dst, dstBlocks).get(10, TimeUnit.SECONDS);

                for (int layer = 0; layer < handle.spec().numLayers(); layer++) {
                    assertThat(dst.page(layer, 3).mismatch(prefill.storage().page(layer, handle.blockIds()[0])))
                            .as("layer %d", layer).isEqualTo(-1L);
                }
            }
        }
    }

    @Test
    void shouldCopyWithoutWaitingForTheStepThePrefillEngineIsIn() throws Exception {
        // A decode sequence must not wait out a long chunked-prefill step for its pages.
        try (CpuBackend backend = new CpuBackend(2);
             PrefillEngine prefill = new PrefillEngine("p", model, backend, config(Duration.ofSeconds(30)))) {
            KvHandle handle = prefill(prefill, "pulled");
            CountDownLatch inCallback = new CountDownLatch(1);
            CountDownLatch hold = new CountDownLatch(1);
            prefill.submit(new PrefillRequest("busy", prompt, SamplingParams.greedy(8), 0), new PrefillCallback() {
                @Override
                public void onPrefilled(PrefillResult r) {
                    inCallback.countDown();
                    try {
                        hold.await();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }

                @Override
                public void onFailed(Throwable error) {}
            });
            inCallback.await();
            try (KvCacheStorage dst = new KvCacheStorage(handle.spec(), 4)) {
                CompletableFuture<Void> pull = new InProcessKvTransport(prefill).pull(handle, dst, new int[] {3});

                assertThat(pull).as("done while the prefill engine thread is busy").isCompleted();
            } finally {
                hold.countDown();
            }
        }
    }

    @Test
    void shouldFailAPullOfAnExpiredLease() throws Exception {
        try (CpuBackend backend = new CpuBackend(2);
             PrefillEngine prefill = new PrefillEngine("p", model, backend, config(Duration.ofMillis(20)))) {
            KvHandle handle = prefill(prefill, "expires");

            assertPullFails(prefill, handle);
        }
    }

    @Test
    void shouldFailAPullOfAReleasedLease() throws Exception {
        try (CpuBackend backend = new CpuBackend(2);
             PrefillEngine prefill = new PrefillEngine("p", model, backend, config(Duration.ofSeconds(30)))) {
            KvHandle handle = prefill(prefill, "released");
            InProcessKvTransport transport = new InProcessKvTransport(prefill);
            transport.release(handle);

            assertPullFails(prefill, handle);
        }
    }

    /** Pulls until the pull fails (release and expiry reach the engine thread asynchronously). */
    private static void assertPullFails(PrefillEngine prefill, KvHandle handle) throws InterruptedException {
        try (KvCacheStorage dst = new KvCacheStorage(handle.spec(), 4)) {
            CompletableFuture<?>[] pull = new CompletableFuture<?>[1];
            await(() -> {
                pull[0] = new InProcessKvTransport(prefill).pull(handle, dst, new int[] {3});
                return pull[0].isCompletedExceptionally();
            });
            assertThatThrownBy(() -> pull[0].get(10, TimeUnit.SECONDS)).isInstanceOf(ExecutionException.class)
                    .hasMessageContaining("lease " + handle.leaseId())
                    .hasMessageContaining("not held");
        }
    }

    private static KvHandle prefill(PrefillEngine prefill, String id) throws Exception {
        CompletableFuture<PrefillResult> result = new CompletableFuture<>();
        prefill.submit(new PrefillRequest(id, prompt, SamplingParams.greedy(8), 0), new PrefillCallback() {
            @Override
            public void onPrefilled(PrefillResult r) {
                result.complete(r);
            }

            @Override
            public void onFailed(Throwable error) {
                result.completeExceptionally(error);
            }
        });
        return result.get(30, TimeUnit.SECONDS).kvHandle();
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
