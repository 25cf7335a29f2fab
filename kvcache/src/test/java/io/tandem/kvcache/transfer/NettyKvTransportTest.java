package io.tandem.kvcache.transfer;

import static io.tandem.kvcache.transfer.KvTransferFixture.assertPagesEqual;
import static io.tandem.kvcache.transfer.KvTransferFixture.await;
import static io.tandem.kvcache.transfer.KvTransferFixture.serve;
import static io.tandem.kvcache.transfer.KvTransferFixture.transport;
import static org.assertj.core.api.Assertions.assertThat;

import io.tandem.kvcache.KvCacheSpec;
import io.tandem.kvcache.KvCacheStorage;
import io.tandem.kvcache.KvDtype;
import io.tandem.kvcache.KvHandle;
import io.tandem.kvcache.testing.NoNettyLeaks;
import io.tandem.kvcache.transfer.KvTransferFixture.Directory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Pulls over real loopback sockets that succeed: contents, layer ranges, concurrency, window. */
@ExtendWith(NoNettyLeaks.class)
@Timeout(60)
class NettyKvTransportTest {
    private static final Duration TIMEOUT = Duration.ofSeconds(20);
    /** Source blocks: runs of 3, 1, 2 and 4 consecutive ids, not in storage order. */
    private static final int[] SRC_BLOCKS = {5, 6, 7, 2, 10, 11, 20, 21, 22, 23};
    /** Destination blocks: a scattered permutation, never consecutive where the source is. */
    private static final int[] DST_BLOCKS = {9, 1, 30, 4, 17, 0, 25, 12, 3, 28};

    static Stream<Arguments> geometries() {
        return Stream.of(
                // spec, window bytes, server max frame payload
                Arguments.of(new KvCacheSpec(2, 1, 4, 2, KvDtype.F32), 64L, 1),
                Arguments.of(new KvCacheSpec(2, 1, 4, 2, KvDtype.F32), 1L << 20, 256 << 10),
                Arguments.of(new KvCacheSpec(4, 2, 64, 16, KvDtype.F16), 3 * 8192L + 100, 256 << 10),
                Arguments.of(new KvCacheSpec(3, 8, 64, 16, KvDtype.F32), 1L << 20, 256 << 10),
                Arguments.of(new KvCacheSpec(2, 8, 128, 16, KvDtype.F16), 64L << 10, 100_000),
                Arguments.of(new KvCacheSpec(5, 3, 24, 8, KvDtype.F16), 8L << 20, 1 << 20));
    }

    @ParameterizedTest
    @MethodSource("geometries")
    void shouldCopyEveryPageByteForByteAcrossScatteredBlockIds(KvCacheSpec spec, long window, int maxFramePayload)
            throws Exception {
        try (TestPageProvider provider = new TestPageProvider("p0", 7, spec, 32, 42);
                KvPageServer server = new KvPageServer(provider, 2, maxFramePayload).start("127.0.0.1", 0);
                NettyKvTransport transport = transport(new Directory().put("p0", server.port()), TIMEOUT, window);
                KvCacheStorage dst = new KvCacheStorage(spec, 32)) {
            KvHandle handle = provider.lease(SRC_BLOCKS);

            transport.pull(handle, dst, DST_BLOCKS).get(20, TimeUnit.SECONDS);

            assertPagesEqual(provider.storage(), SRC_BLOCKS, dst, DST_BLOCKS, 0, spec.numLayers());
            long bytes = handle.byteSize();
            assertThat(server.payloadBytesSent()).isEqualTo(bytes);
            assertThat(transport.payloadBytesReceived()).isEqualTo(bytes);
        }
    }

    @Test
    void shouldPullOnlyTheRequestedLayerRange() throws Exception {
        KvCacheSpec spec = new KvCacheSpec(6, 2, 32, 16, KvDtype.F16);
        try (TestPageProvider provider = new TestPageProvider("p0", 1, spec, 32, 3);
                KvPageServer server = serve(provider);
                NettyKvTransport transport = transport(new Directory().put("p0", server.port()), TIMEOUT, 1 << 20);
                KvCacheStorage dst = new KvCacheStorage(spec, 32)) {
            KvHandle handle = provider.lease(SRC_BLOCKS);

            transport.pull(handle, dst, DST_BLOCKS, 2, 4).get(20, TimeUnit.SECONDS);

            assertPagesEqual(provider.storage(), SRC_BLOCKS, dst, DST_BLOCKS, 2, 4);
            for (int layer : new int[] {0, 1, 4, 5}) {
                for (int block : DST_BLOCKS) {
                    assertThat(KvTransferFixture.isZero(dst, layer, block)).as("layer %d block %d", layer, block).isTrue();
                }
            }
            transport.pull(handle, dst, DST_BLOCKS, 0, 2).get(20, TimeUnit.SECONDS);
            transport.pull(handle, dst, DST_BLOCKS, 4, 6).get(20, TimeUnit.SECONDS);
            assertPagesEqual(provider.storage(), SRC_BLOCKS, dst, DST_BLOCKS, 0, 6);
            assertThat(server.payloadBytesSent()).isEqualTo(handle.byteSize());
        }
    }

    @Test
    void shouldServeManyConcurrentPullsOverOneConnection() throws Exception {
        KvCacheSpec spec = new KvCacheSpec(4, 2, 64, 16, KvDtype.F32);
        int pulls = 32;
        int blocksPerPull = 4;
        try (TestPageProvider provider = new TestPageProvider("p0", 1, spec, pulls * blocksPerPull, 11);
                KvPageServer server = serve(provider);
                NettyKvTransport transport = transport(new Directory().put("p0", server.port()), TIMEOUT, 256 << 10);
                KvCacheStorage dst = new KvCacheStorage(spec, pulls * blocksPerPull)) {
            provider.answerOn(CompletableFuture.delayedExecutor(1, TimeUnit.MILLISECONDS));
            List<int[]> srcs = new ArrayList<>();
            List<int[]> dsts = new ArrayList<>();
            List<CompletableFuture<Void>> futures = new ArrayList<>();
            for (int p = 0; p < pulls; p++) {
                int[] src = new int[blocksPerPull];
                int[] dstIds = new int[blocksPerPull];
                for (int i = 0; i < blocksPerPull; i++) {
                    src[i] = p * blocksPerPull + i;
                    dstIds[i] = (pulls * blocksPerPull - 1) - src[i];
                }
                srcs.add(src);
                dsts.add(dstIds);
                futures.add(transport.pull(provider.lease(src), dst, dstIds));
            }

            CompletableFuture.allOf(futures.toArray(CompletableFuture[]::new)).get(20, TimeUnit.SECONDS);

            for (int p = 0; p < pulls; p++) {
                assertPagesEqual(provider.storage(), srcs.get(p), dst, dsts.get(p), 0, spec.numLayers());
            }
            assertThat(server.openConnections()).isEqualTo(1);
        }
    }

    @Test
    void shouldPullFromSeveralServersAndSeveralTransportsAtOnce() throws Exception {
        KvCacheSpec spec = new KvCacheSpec(3, 2, 64, 16, KvDtype.F16);
        List<TestPageProvider> providers = new ArrayList<>();
        List<KvPageServer> servers = new ArrayList<>();
        Directory directory = new Directory();
        try (NettyKvTransport first = transport(directory, TIMEOUT, 128 << 10);
                NettyKvTransport second = transport(directory, TIMEOUT, 64 << 10);
                KvCacheStorage dst = new KvCacheStorage(spec, 3 * 2 * 4 * 4)) {
            for (int w = 0; w < 3; w++) {
                TestPageProvider provider = new TestPageProvider("p" + w, 1, spec, 16, 100 + w);
                providers.add(provider);
                servers.add(serve(provider));
                directory.put(provider.workerId, servers.get(w).port());
            }
            List<CompletableFuture<Void>> futures = new ArrayList<>();
            int nextDst = 0;
            for (int w = 0; w < 3; w++) {
                for (NettyKvTransport transport : List.of(first, second)) {
                    for (int rep = 0; rep < 4; rep++) {
                        TestPageProvider provider = providers.get(w);
                        int[] src = {rep, rep + 4, rep + 5, 15 - rep};
                        int[] dstIds = {nextDst, nextDst + 1, nextDst + 2, nextDst + 3};
                        nextDst += 4;
                        futures.add(transport.pull(provider.lease(src), dst, dstIds).thenRun(() ->
                                assertPagesEqual(provider.storage(), src, dst, dstIds, 0, spec.numLayers())));
                    }
                }
            }

            for (CompletableFuture<Void> future : futures) {
                future.get(20, TimeUnit.SECONDS);
            }

            for (KvPageServer server : servers) {
                assertThat(server.openConnections()).as("one connection per transport").isEqualTo(2);
            }
        } finally {
            servers.forEach(KvPageServer::close);
            providers.forEach(TestPageProvider::close);
        }
    }

    @Test
    void shouldKeepPayloadBytesInFlightWithinTheWindow() throws Exception {
        KvCacheSpec spec = new KvCacheSpec(8, 2, 64, 16, KvDtype.F32);
        long window = 96 << 10;
        try (TestPageProvider provider = new TestPageProvider("p0", 1, spec, 256, 5);
                KvPageServer server = serve(provider);
                NettyKvTransport transport = transport(new Directory().put("p0", server.port()), TIMEOUT, window);
                KvCacheStorage dst = new KvCacheStorage(spec, 256)) {
            List<CompletableFuture<Void>> futures = new ArrayList<>();
            for (int p = 0; p < 16; p++) {
                int[] blocks = new int[16];
                for (int i = 0; i < 16; i++) {
                    blocks[i] = p * 16 + i;
                }
                futures.add(transport.pull(provider.lease(blocks), dst, blocks));
            }
            CompletableFuture<Void> all = CompletableFuture.allOf(futures.toArray(CompletableFuture[]::new));
            long maxInFlight = 0;
            while (!all.isDone()) {
                // Sent first, consumed second: the difference can only under-count the true value,
                // so a sample above the window is a real violation.
                long sent = server.payloadBytesSent();
                long consumed = transport.payloadBytesReceived();
                maxInFlight = Math.max(maxInFlight, sent - consumed);
            }
            all.get();

            assertThat(server.payloadBytesSent()).isEqualTo(16L * 16 * spec.pageBytes() * spec.numLayers());
            assertThat(maxInFlight).as("payload bytes sent but not consumed").isPositive().isLessThanOrEqualTo(window);
        }
    }

    @Test
    void shouldCompleteAtOnceForAnEmptyHandle() throws Exception {
        KvCacheSpec spec = new KvCacheSpec(2, 1, 8, 4, KvDtype.F32);
        try (NettyKvTransport transport = transport(new Directory(), TIMEOUT, 1 << 20);
                KvCacheStorage dst = new KvCacheStorage(spec, 4)) {
            KvHandle empty = new KvHandle("nowhere", 1, 1, new int[0], 0, spec);

            assertThat(transport.pull(empty, dst, new int[0]).get(1, TimeUnit.SECONDS)).isNull();
        }
    }

    @Test
    void shouldReconnectWhenTheWorkerComesBackOnAnotherPort() throws Exception {
        KvCacheSpec spec = new KvCacheSpec(2, 2, 16, 4, KvDtype.F16);
        Directory directory = new Directory();
        try (TestPageProvider provider = new TestPageProvider("p0", 1, spec, 8, 9);
                NettyKvTransport transport = transport(directory, TIMEOUT, 1 << 20);
                KvCacheStorage dst = new KvCacheStorage(spec, 8)) {
            int[] blocks = {1, 2, 3};
            try (KvPageServer before = serve(provider)) {
                directory.put("p0", before.port());
                transport.pull(provider.lease(blocks), dst, blocks).get(20, TimeUnit.SECONDS);
            }
            try (KvPageServer after = serve(provider)) {
                directory.put("p0", after.port());
                transport.pull(provider.lease(blocks), dst, blocks).get(20, TimeUnit.SECONDS);
                await("the new server to see the connection", () -> after.openConnections() == 1);
            }
            assertPagesEqual(provider.storage(), blocks, dst, blocks, 0, spec.numLayers());
        }
    }
}
