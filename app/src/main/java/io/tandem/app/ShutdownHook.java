package io.tandem.app;

import java.util.concurrent.CountDownLatch;

/**
 * What {@code serve}-like commands do until SIGINT/SIGTERM: a JVM shutdown hook closes the given
 * resources in order (servers before engines), and the command's thread waits for it to finish.
 */
final class ShutdownHook {
    private final CountDownLatch stopped = new CountDownLatch(1);

    private ShutdownHook() {}

    /** Registers a hook that closes {@code inOrder} one after the other. */
    static ShutdownHook install(AutoCloseable... inOrder) {
        ShutdownHook hook = new ShutdownHook();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                closeAll(inOrder);
            } finally {
                hook.stopped.countDown();
            }
        }, "tandem-shutdown"));
        return hook;
    }

    /** Closes each resource, all of them even if one fails; the first failure is rethrown after. */
    static void closeAll(AutoCloseable... inOrder) {
        RuntimeException failure = null;
        for (AutoCloseable c : inOrder) {
            try {
                c.close();
            } catch (Exception e) {
                if (failure == null) {
                    failure = new IllegalStateException("closing " + c + " failed", e);
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        if (failure != null) {
            throw failure;
        }
    }

    /** Blocks until the hook has closed everything. */
    void awaitStopped() throws InterruptedException {
        stopped.await();
    }
}
