package io.tandem.engine;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.management.ManagementFactory;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The duty cycle itself, with an engine that has nothing to do. */
@Timeout(30)
class EngineLoopTest {

    /** Counts its cycles; reports its thread. */
    private static final class IdleEngine extends EngineLoop<Runnable> {
        final CompletableFuture<Thread> thread = new CompletableFuture<>();

        IdleEngine() {
            super("idle-test", 16);
            start();
        }

        @Override
        protected void onCommand(Runnable command) {
            command.run();
        }

        @Override
        protected int step() {
            thread.complete(Thread.currentThread());
            return 0;
        }

        @Override
        protected void publishStats() {}

        @Override
        protected void shutDown() {}
    }

    @Test
    void shouldNotAllocateWhileIdle() throws Exception {
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        try (IdleEngine engine = new IdleEngine()) {
            long tid = engine.thread.get(10, TimeUnit.SECONDS).threadId();
            Thread.sleep(500); // past the spin and yield phases, into the 1 ms parks

            long before = threads.getThreadAllocatedBytes(tid);
            Thread.sleep(1000);
            long allocated = threads.getThreadAllocatedBytes(tid) - before;

            assertThat(allocated).as("bytes allocated by ~1000 idle duty cycles").isLessThan(1024);
        }
    }
}
