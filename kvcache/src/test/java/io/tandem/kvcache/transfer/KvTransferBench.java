package io.tandem.kvcache.transfer;

import io.tandem.kvcache.KvCacheSpec;
import io.tandem.kvcache.KvCacheStorage;
import io.tandem.kvcache.KvDtype;
import io.tandem.kvcache.KvHandle;
import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;

/**
 * Loopback throughput of the KV data plane next to a plain {@link MemorySegment#copy} of the same
 * pages, measured in the same run. Page geometry of Llama-3.2-1B (16 layers, 8 KV heads, head dim
 * 64, block 16): 32 KiB pages in f16, 64 KiB in f32. Each case moves at least 1 GiB after a
 * warm-up, with windows of 1, 8 and 64 MiB, one pull at a time or {@value #CONCURRENT} at once, and
 * block ids either consecutive (runs up to the frame cap) or every other block (one page per run).
 *
 * <p>Run: {@code java --enable-native-access=ALL-UNNAMED -cp <test classpath>
 * io.tandem.kvcache.transfer.KvTransferBench [ioThreads]}.
 */
public final class KvTransferBench {
    private static final long GIB = 1L << 30;
    private static final int BLOCKS_PER_PULL = 128;
    private static final int CONCURRENT = 4;
    /** Runs per network case; the median is reported (the machine may be shared). */
    private static final int REPEATS = 3;
    private static final long[] WINDOWS = {1L << 20, 8L << 20, 64L << 20};

    /** Keeps the checksum observable. */
    private static volatile long sink;

    private KvTransferBench() {
    }

    public static void main(String[] args) throws Exception {
        int ioThreads = args.length > 0 ? Integer.parseInt(args[0]) : 1;
        System.out.printf("cores=%d ioThreads=%d (server and client each)%n",
                Runtime.getRuntime().availableProcessors(), ioThreads);
        for (KvDtype dtype : KvDtype.values()) {
            KvCacheSpec spec = new KvCacheSpec(16, 8, 64, 16, dtype);
            run(spec, ioThreads);
        }
    }

    private static void run(KvCacheSpec spec, int ioThreads) throws Exception {
        int numBlocks = 2 * BLOCKS_PER_PULL;
        try (TestPageProvider provider = new TestPageProvider("p0", 1, spec, numBlocks, 1);
                KvPageServer server = new KvPageServer(provider, ioThreads).start("127.0.0.1", 0);
                KvCacheStorage dst = new KvCacheStorage(spec, numBlocks)) {
            InetSocketAddress address = new InetSocketAddress("127.0.0.1", server.port());
            long pullBytes = BLOCKS_PER_PULL * spec.blockBytes();
            int rounds = (int) Math.max(1, (GIB + pullBytes - 1) / pullBytes);
            System.out.printf("%n%s: page %d KiB, pull %d MiB (%d blocks x %d layers), >= %d MiB per case%n",
                    spec.dtype(), spec.pageBytes() >> 10, pullBytes >> 20, BLOCKS_PER_PULL, spec.numLayers(),
                    rounds * pullBytes >> 20);
            int[] consecutive = blocks(BLOCKS_PER_PULL, 1, 0);
            System.out.printf("  memcpy baseline (page by page)        %6.2f GB/s%n",
                    memcpy(provider.storage(), dst, consecutive, rounds));
            System.out.printf("  CRC32C over the same bytes            %6.2f GB/s%n",
                    crc(provider.storage(), consecutive, rounds));
            for (long window : WINDOWS) {
                for (int stride : new int[] {1, 2}) {
                    for (int concurrent : new int[] {1, CONCURRENT}) {
                        if (stride == 2 && concurrent != 1) {
                            continue;
                        }
                        double[] gbps = new double[REPEATS];
                        for (int r = 0; r < REPEATS; r++) {
                            gbps[r] = network(provider, address, dst, window, ioThreads, stride, concurrent, rounds);
                        }
                        java.util.Arrays.sort(gbps);
                        System.out.printf("  netty window %2d MiB, %-11s x%d pull %6.2f GB/s (median of %d, best %.2f)%n",
                                window >> 20, stride == 1 ? "consecutive" : "scattered", concurrent, gbps[REPEATS / 2],
                                REPEATS, gbps[REPEATS - 1]);
                    }
                }
            }
        }
    }

    private static double network(TestPageProvider provider, InetSocketAddress address, KvCacheStorage dst,
            long window, int ioThreads, int stride, int concurrent, int rounds) throws Exception {
        try (NettyKvTransport transport = new NettyKvTransport(worker -> address, Duration.ofSeconds(60), window,
                ioThreads)) {
            List<KvHandle> handles = new ArrayList<>();
            List<int[]> dsts = new ArrayList<>();
            for (int c = 0; c < concurrent; c++) {
                int[] ids = blocks(BLOCKS_PER_PULL / concurrent, stride, c * 2 * BLOCKS_PER_PULL / concurrent);
                handles.add(provider.lease(ids));
                dsts.add(ids);
            }
            for (int warmup = 0; warmup < 2; warmup++) {
                pullAll(transport, handles, dst, dsts);
            }
            long bytes = 0;
            long start = System.nanoTime();
            for (int r = 0; r < rounds; r++) {
                bytes += pullAll(transport, handles, dst, dsts);
            }
            return bytes / (double) (System.nanoTime() - start);
        }
    }

    private static long pullAll(NettyKvTransport transport, List<KvHandle> handles, KvCacheStorage dst,
            List<int[]> dsts) throws Exception {
        List<CompletableFuture<Void>> futures = new ArrayList<>();
        long bytes = 0;
        for (int i = 0; i < handles.size(); i++) {
            futures.add(transport.pull(handles.get(i), dst, dsts.get(i)));
            bytes += handles.get(i).byteSize();
        }
        CompletableFuture.allOf(futures.toArray(CompletableFuture[]::new)).get(60, TimeUnit.SECONDS);
        return bytes;
    }

    private static double memcpy(KvCacheStorage src, KvCacheStorage dst, int[] blockIds, int rounds) {
        long pageBytes = src.spec().pageBytes();
        for (int warmup = 0; warmup < 2; warmup++) {
            copyPages(src, dst, blockIds, pageBytes);
        }
        long start = System.nanoTime();
        long bytes = 0;
        for (int r = 0; r < rounds; r++) {
            bytes += copyPages(src, dst, blockIds, pageBytes);
        }
        return bytes / (double) (System.nanoTime() - start);
    }

    private static long copyPages(KvCacheStorage src, KvCacheStorage dst, int[] blockIds, long pageBytes) {
        long bytes = 0;
        for (int layer = 0; layer < src.spec().numLayers(); layer++) {
            for (int blockId : blockIds) {
                MemorySegment.copy(src.layer(layer), src.pageOffset(blockId), dst.layer(layer),
                        dst.pageOffset(blockId), pageBytes);
                bytes += pageBytes;
            }
        }
        return bytes;
    }

    private static double crc(KvCacheStorage src, int[] blockIds, int rounds) {
        CRC32C crc = new CRC32C();
        long start = System.nanoTime();
        long bytes = 0;
        for (int r = 0; r < rounds + 2; r++) {
            if (r == 2) {
                start = System.nanoTime();
                bytes = 0;
            }
            for (int layer = 0; layer < src.spec().numLayers(); layer++) {
                for (int blockId : blockIds) {
                    crc.update(src.page(layer, blockId).asByteBuffer());
                    bytes += src.spec().pageBytes();
                }
            }
        }
        sink = crc.getValue();
        return bytes / (double) (System.nanoTime() - start);
    }

    /** {@code n} block ids from {@code first}, {@code stride} apart. */
    private static int[] blocks(int n, int stride, int first) {
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = first + i * stride;
        }
        return ids;
    }
}
