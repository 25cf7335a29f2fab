package io.tandem.engine.backend;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class WorkerPoolTest {

    @Test
    void shouldRunEveryChunkExactlyOnceAcrossManyJobs() {
        try (WorkerPool pool = new WorkerPool(3, 50_000, "test")) {
            for (int job = 0; job < 2000; job++) {
                int count = 1 + job % 37;
                AtomicIntegerArray hits = new AtomicIntegerArray(count);
                pool.parallelFor(count, hits::incrementAndGet);
                for (int c = 0; c < count; c++) {
                    assertThat(hits.get(c)).as("job %d chunk %d", job, c).isEqualTo(1);
                }
            }
        }
    }

    @Test
    void shouldRunChunksOnTheCallerAndEveryWorkerAtTheSameTime() {
        try (WorkerPool pool = new WorkerPool(3, 1_000_000, "test")) {
            CyclicBarrier allThree = new CyclicBarrier(3);
            pool.parallelFor(3, chunk -> await(allThree));
        }
    }

    @Test
    void shouldWakeParkedWorkersForTheNextJob() {
        try (WorkerPool pool = new WorkerPool(3, 0, "test")) {
            awaitCondition(() -> pool.parkedWorkers() == 2);
            CyclicBarrier allThree = new CyclicBarrier(3);
            pool.parallelFor(3, chunk -> await(allThree));
            awaitCondition(() -> pool.parkedWorkers() == 2);
            CyclicBarrier again = new CyclicBarrier(3);
            pool.parallelFor(3, chunk -> await(again));
        }
    }

    @Test
    void shouldRethrowAChunkFailureAfterAllChunksFinishAndStayUsable() {
        try (WorkerPool pool = new WorkerPool(3, 50_000, "test")) {
            AtomicIntegerArray hits = new AtomicIntegerArray(64);
            assertThatThrownBy(() -> pool.parallelFor(64, c -> {
                hits.incrementAndGet(c);
                if (c == 17) {
                    throw new ArithmeticException("chunk 17");
                }
            })).isInstanceOf(ArithmeticException.class).hasMessage("chunk 17");
            for (int c = 0; c < 64; c++) {
                assertThat(hits.get(c)).isEqualTo(1);
            }
            AtomicIntegerArray next = new AtomicIntegerArray(8);
            pool.parallelFor(8, next::incrementAndGet);
            assertThat(next.toString()).isEqualTo("[1, 1, 1, 1, 1, 1, 1, 1]");
        }
    }

    @Test
    void shouldRejectANestedParallelFor() {
        try (WorkerPool pool = new WorkerPool(2, 50_000, "test")) {
            assertThatThrownBy(() -> pool.parallelFor(4, c -> pool.parallelFor(2, d -> { })))
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("concurrently or re-entrantly");
        }
    }

    @Test
    void shouldStopItsThreadsOnCloseAndIgnoreASecondClose() {
        WorkerPool pool = new WorkerPool(4, 50_000, "test");
        assertThat(pool.liveWorkers()).isEqualTo(3);
        pool.close();
        assertThat(pool.liveWorkers()).isZero();
        pool.close();
        assertThatThrownBy(() -> pool.parallelFor(4, c -> { }))
                .isInstanceOf(IllegalStateException.class)
                .hasMessage("WorkerPool is closed");
    }

    @Test
    void shouldRunEverythingOnTheCallerWithParallelismOne() {
        try (WorkerPool pool = new WorkerPool(1, 0, "test")) {
            Thread caller = Thread.currentThread();
            pool.parallelFor(5, c -> assertThat(Thread.currentThread()).isSameAs(caller));
            assertThat(pool.liveWorkers()).isZero();
        }
    }

    private static void await(CyclicBarrier barrier) {
        try {
            barrier.await(20, TimeUnit.SECONDS);
        } catch (InterruptedException | BrokenBarrierException | TimeoutException e) {
            throw new AssertionError("chunks did not run concurrently", e);
        }
    }

    static void awaitCondition(BooleanSupplier condition) {
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("condition not met within 20 s");
            }
            Thread.onSpinWait();
        }
    }
}
