package io.tandem.kvcache.transfer;

import static org.assertj.core.api.Assertions.assertThat;

import io.tandem.kvcache.KvCacheStorage;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/** Shared helpers of the data-plane tests: servers on loopback, a resolver, page comparisons. */
final class KvTransferFixture {
    static final String LOOPBACK = "127.0.0.1";

    private KvTransferFixture() {
    }

    /** A started server on an ephemeral loopback port. */
    static KvPageServer serve(KvPageProvider provider) {
        return new KvPageServer(provider, 2).start(LOOPBACK, 0);
    }

    /** A resolver backed by a mutable map, so tests can move a worker. */
    static final class Directory {
        final Map<String, InetSocketAddress> addresses = new ConcurrentHashMap<>();

        Directory put(String workerId, int port) {
            addresses.put(workerId, new InetSocketAddress(LOOPBACK, port));
            return this;
        }

        InetSocketAddress resolve(String workerId) {
            InetSocketAddress address = addresses.get(workerId);
            if (address == null) {
                throw new IllegalArgumentException("unknown worker " + workerId);
            }
            return address;
        }
    }

    static NettyKvTransport transport(Directory directory, Duration timeout, long window) {
        return new NettyKvTransport(directory::resolve, timeout, window, 2);
    }

    /** Asserts that pages {@code (layer, dstBlockIds[i])} of dst equal {@code (layer, srcBlockIds[i])} of src. */
    static void assertPagesEqual(KvCacheStorage src, int[] srcBlockIds, KvCacheStorage dst, int[] dstBlockIds,
            int layerFrom, int layerTo) {
        for (int layer = layerFrom; layer < layerTo; layer++) {
            for (int i = 0; i < srcBlockIds.length; i++) {
                long mismatch = src.page(layer, srcBlockIds[i]).mismatch(dst.page(layer, dstBlockIds[i]));
                assertThat(mismatch).as("first differing byte of layer %d page %d (block %d -> %d)", layer, i,
                        srcBlockIds[i], dstBlockIds[i]).isEqualTo(-1L);
            }
        }
    }

    /** True if every byte of page (layer, block) of storage is zero. */
    static boolean isZero(KvCacheStorage storage, int layer, int blockId) {
        var page = storage.page(layer, blockId);
        return page.mismatch(java.lang.foreign.MemorySegment.ofArray(new byte[(int) page.byteSize()])) == -1;
    }

    /** The cause a future failed with, waiting at most 20 s; fails if it completes normally. */
    static Throwable failure(CompletableFuture<?> future) throws Exception {
        try {
            future.get(20, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            return e.getCause();
        }
        throw new AssertionError("expected the pull to fail, it succeeded");
    }

    /** Waits up to 10 s for {@code condition}, polling every millisecond. */
    static void await(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(1);
        }
    }

    /** Live threads whose name starts with {@code prefix}. */
    static long threadsNamed(String prefix) {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(Thread::isAlive)
                .filter(thread -> thread.getName().startsWith(prefix))
                .count();
    }
}
