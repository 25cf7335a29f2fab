package io.tandem.router.worker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tandem.kvcache.CachedBlockHashes;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Pool membership that changes while requests are routed: snapshots, holds, draining, closing.
 * The workers only count how often they are closed and whether a request was using them then.
 */
@Timeout(60)
class WorkerPoolTest {
    private final List<Worker> closedByPool = new CopyOnWriteArrayList<>();

    @Test
    void shouldPublishANewSnapshotOnEveryChangeAndLeaveOldOnesAsTheyWere() {
        Worker a = new Worker("a");
        Worker b = new Worker("b");
        WorkerPool<Worker> pool = pool(a);
        List<Worker> before = pool.members();

        pool.add(b);

        assertThat(before).containsExactly(a);
        assertThat(pool.members()).containsExactly(a, b);
        assertThatThrownBy(() -> pool.members().add(a)).isInstanceOf(UnsupportedOperationException.class);
        assertThatThrownBy(() -> pool.add(b)).isInstanceOf(IllegalStateException.class).hasMessageContaining("b");
    }

    @Test
    void shouldCloseAnIdleWorkerAtOnceWhenItLeaves() {
        Worker a = new Worker("a");
        Worker b = new Worker("b");
        WorkerPool<Worker> pool = pool(a, b);

        assertThat(pool.remove(a)).isZero();

        assertThat(pool.members()).containsExactly(b);
        assertThat(a.closes.get()).isEqualTo(1);
        assertThat(closedByPool).containsExactly(a);
        assertThat(pool.numDraining()).isZero();
        assertThat(pool.remove(a)).as("not a member any more").isEqualTo(-1);
    }

    @Test
    void shouldDrainAWorkerThatLeavesUntilTheLastRequestHoldingItEnds() {
        Worker a = new Worker("a");
        WorkerPool<Worker> pool = pool(a);
        assertThat(pool.tryAcquire(a)).isTrue();
        assertThat(pool.tryAcquire(a)).isTrue();

        assertThat(pool.remove(a)).isEqualTo(2);
        assertThat(pool.members()).isEmpty();
        assertThat(pool.numDraining()).isEqualTo(1);
        assertThat(pool.tryAcquire(a)).as("a request that chose it from an older snapshot").isFalse();
        pool.release(a);
        assertThat(a.closes.get()).as("closed under a request").isZero();
        pool.release(a);

        assertThat(a.closes.get()).isEqualTo(1);
        assertThat(closedByPool).containsExactly(a);
        assertThat(pool.numDraining()).isZero();
        assertThatThrownBy(() -> pool.release(a)).isInstanceOf(IllegalStateException.class);
    }

    @Test
    void shouldCloseEveryMemberAndDrainingWorkerOnCloseAndIgnoreLaterReleases() {
        Worker a = new Worker("a");
        Worker b = new Worker("b");
        WorkerPool<Worker> pool = pool(a, b);
        assertThat(pool.tryAcquire(a)).isTrue();
        pool.remove(a);

        pool.close();
        pool.close();
        pool.release(a); // a request ending after the router stopped

        assertThat(a.closes.get()).isEqualTo(1);
        assertThat(b.closes.get()).isEqualTo(1);
        assertThat(closedByPool).as("onClosed is for workers that left").isEmpty();
        assertThat(pool.tryAcquire(b)).isFalse();
        assertThatThrownBy(() -> pool.add(new Worker("c"))).isInstanceOf(IllegalStateException.class);
    }

    @Test
    void shouldNeverCloseAWorkerUnderARequestWhileRequestsRaceItsRemoval() throws Exception {
        for (int round = 0; round < 200; round++) {
            Worker w = new Worker("w" + round);
            WorkerPool<Worker> pool = pool(w);
            CountDownLatch go = new CountDownLatch(1);
            List<Thread> requests = new ArrayList<>();
            for (int t = 0; t < 4; t++) {
                requests.add(Thread.ofPlatform().start(() -> {
                    await(go);
                    for (int i = 0; i < 50; i++) {
                        if (pool.tryAcquire(w)) {
                            w.inUse.incrementAndGet();
                            Thread.onSpinWait();
                            w.inUse.decrementAndGet();
                            pool.release(w);
                        }
                    }
                }));
            }
            go.countDown();
            pool.remove(w);
            for (Thread t : requests) {
                t.join();
            }
            assertThat(w.closes.get()).as("round %d", round).isEqualTo(1);
            assertThat(w.closedInUse).as("closed while a request used it").isFalse();
        }
    }

    private WorkerPool<Worker> pool(Worker... initial) {
        return new WorkerPool<>("prefill", List.of(initial), closedByPool::add, Runnable::run);
    }

    private static void await(CountDownLatch latch) {
        try {
            latch.await(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** A worker that records its closes, and whether a request was using it at one. */
    private static final class Worker extends LoadedWorkers.Loaded {
        final AtomicInteger closes = new AtomicInteger();
        final AtomicInteger inUse = new AtomicInteger();
        volatile boolean closedInUse;

        Worker(String id) {
            super(id, LoadedWorkers.prefillLoad(0, CachedBlockHashes.NONE));
        }

        @Override
        public void close() {
            closedInUse |= inUse.get() > 0;
            closes.incrementAndGet();
        }
    }
}
