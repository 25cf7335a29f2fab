package io.tandem.kvcache.transfer;

import static io.tandem.kvcache.transfer.KvTransferFixture.assertPagesEqual;
import static io.tandem.kvcache.transfer.KvTransferFixture.await;
import static io.tandem.kvcache.transfer.KvTransferFixture.failure;
import static io.tandem.kvcache.transfer.KvTransferFixture.serve;
import static io.tandem.kvcache.transfer.KvTransferFixture.threadsNamed;
import static io.tandem.kvcache.transfer.KvTransferFixture.transport;
import static org.assertj.core.api.Assertions.assertThat;

import io.tandem.kvcache.KvCacheSpec;
import io.tandem.kvcache.KvCacheStorage;
import io.tandem.kvcache.KvDtype;
import io.tandem.kvcache.KvHandle;
import io.tandem.kvcache.LayerProgress;
import io.tandem.kvcache.testing.NoNettyLeaks;
import io.tandem.kvcache.transfer.KvTransferFixture.Directory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/** Pulls that must fail, and fail in bounded time with a clear error; release; close. */
@ExtendWith(NoNettyLeaks.class)
@Timeout(60)
class NettyKvTransportFailureTest {
    private static final Duration TIMEOUT = Duration.ofSeconds(20);
    private static final KvCacheSpec SPEC = new KvCacheSpec(4, 2, 32, 16, KvDtype.F16);
    /** 16 layers of 32 KiB pages (Llama-3.2-1B f16): 512 KiB per block. */
    private static final KvCacheSpec BIG = new KvCacheSpec(16, 8, 64, 16, KvDtype.F16);

    @Test
    void shouldFailWithTheServersErrorCodeAndKeepTheConnectionUsable() throws Exception {
        try (TestPageProvider provider = new TestPageProvider("p0", 7, SPEC, 32, 1);
                KvPageServer server = serve(provider);
                NettyKvTransport transport = transport(new Directory().put("p0", server.port()), TIMEOUT, 1 << 20);
                KvCacheStorage dst = new KvCacheStorage(SPEC, 32)) {
            KvHandle good = provider.lease(1, 2, 3);
            int[] dstIds = {4, 5, 6};

            assertError(transport.pull(new KvHandle("p0", 6, good.leaseId(), good.blockIds(), good.numTokens(), SPEC),
                    dst, dstIds), KvTransferStatus.STALE_EPOCH);
            assertError(transport.pull(new KvHandle("p0", 7, 999, good.blockIds(), good.numTokens(), SPEC), dst, dstIds),
                    KvTransferStatus.UNKNOWN_LEASE);
            assertError(transport.pull(provider.lease(1, 32, 3), dst, dstIds), KvTransferStatus.BAD_BLOCK_ID);
            assertError(transport.pull(new KvHandle("p0", 7, good.leaseId(), new int[] {1, 2, 9}, good.numTokens(),
                    SPEC), dst, dstIds), KvTransferStatus.BAD_BLOCK_ID);
            KvCacheSpec f32 = new KvCacheSpec(4, 2, 32, 16, KvDtype.F32);
            try (KvCacheStorage f32Dst = new KvCacheStorage(f32, 8)) {
                assertError(transport.pull(new KvHandle("p0", 7, good.leaseId(), good.blockIds(), good.numTokens(),
                        f32), f32Dst, dstIds), KvTransferStatus.PAGE_SIZE_MISMATCH);
            }

            transport.pull(good, dst, dstIds).get(20, TimeUnit.SECONDS);
            assertPagesEqual(provider.storage(), good.blockIds(), dst, dstIds, 0, SPEC.numLayers());
            assertThat(server.openConnections()).isEqualTo(1);
        }
    }

    @Test
    void shouldRejectRequestsThatDoNotFitBeforeSendingThem() throws Exception {
        try (TestPageProvider provider = new TestPageProvider("p0", 1, SPEC, 8, 1);
                KvPageServer server = serve(provider);
                NettyKvTransport transport = transport(new Directory().put("p0", server.port()), TIMEOUT,
                        SPEC.pageBytes() - 1);
                NettyKvTransport roomy = transport(new Directory().put("p0", server.port()), TIMEOUT, 1 << 20);
                KvCacheStorage dst = new KvCacheStorage(SPEC, 8);
                KvCacheStorage otherDst = new KvCacheStorage(new KvCacheSpec(4, 2, 32, 8, KvDtype.F16), 8)) {
            KvHandle handle = provider.lease(1, 2);

            assertThat(failure(transport.pull(handle, dst, new int[] {1, 2})))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("window");
            assertThat(failure(roomy.pull(handle, otherDst, new int[] {1, 2})))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("geometry");
            assertThat(failure(roomy.pull(handle, dst, new int[] {1})))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("blocks");
            assertThat(failure(roomy.pull(handle, dst, new int[] {1, 8})))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("destination block id 8");
            assertThat(failure(roomy.pull(handle, dst, new int[] {1, 2}, 3, 3)))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("layers [3, 3)");
            assertThat(failure(roomy.pull(new KvHandle("nobody", 1, 1, new int[] {1}, 1, SPEC), dst, new int[] {1})))
                    .isInstanceOf(KvTransferException.class).hasMessageContaining("nobody");
            assertThat(server.payloadBytesSent()).isZero();
        }
    }

    @Test
    void shouldFailWithCrcMismatchNamingRequestLayerAndPages() throws Exception {
        try (TestPageProvider provider = new TestPageProvider("p0", 1, SPEC, 32, 2);
                KvPageServer server = serve(provider);
                FaultyProxy proxy = new FaultyProxy(server.port(), FaultyProxy.Fault.CORRUPT,
                        KvFrame.PAGES_HEADER_LENGTH + 10);
                NettyKvTransport transport = transport(new Directory().put("p0", proxy.port()), TIMEOUT, 1 << 20);
                KvCacheStorage dst = new KvCacheStorage(SPEC, 32)) {
            KvHandle handle = provider.lease(3, 4, 9);

            Throwable cause = failure(transport.pull(handle, dst, new int[] {0, 1, 2}));

            assertThat(cause).isInstanceOf(KvTransferException.class);
            assertThat(((KvTransferException) cause).status()).isEqualTo(KvTransferStatus.CRC_MISMATCH);
            assertThat(cause).hasMessageContaining("KV pull 1 of lease " + handle.leaseId())
                    .hasMessageContaining("CRC32C mismatch in layer 0, pages 0..1 (source blocks 3..4)");
            // The rest of the pull is dropped and its credit returned: the connection still works.
            KvHandle next = provider.lease(5);
            transport.pull(next, dst, new int[] {7}).get(20, TimeUnit.SECONDS);
            assertPagesEqual(provider.storage(), next.blockIds(), dst, new int[] {7}, 0, SPEC.numLayers());
        }
    }

    @Test
    void shouldFailEveryPendingPullAtOnceWhenTheServerCloses() throws Exception {
        try (TestPageProvider provider = new TestPageProvider("p0", 1, SPEC, 32, 3);
                KvCacheStorage dst = new KvCacheStorage(SPEC, 32)) {
            KvPageServer server = serve(provider);
            Directory directory = new Directory().put("p0", server.port());
            try (NettyKvTransport pulling = transport(directory, Duration.ofSeconds(30), 1 << 20)) {
                provider.holdValidation();
                List<CompletableFuture<Void>> pending = new ArrayList<>();
                for (int i = 0; i < 5; i++) {
                    pending.add(pulling.pull(provider.lease(i), dst, new int[] {i}));
                }
                await("the server to hold every pull", () -> provider.held.size() == 5);
                long start = System.nanoTime();

                server.close();

                for (CompletableFuture<Void> future : pending) {
                    Throwable cause = failure(future);
                    assertThat(cause).isInstanceOf(KvTransferException.class).hasMessageContaining("lost");
                    assertThat(((KvTransferException) cause).status()).isEqualTo(KvTransferStatus.CONNECTION_LOST);
                }
                assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start)).isLessThan(5_000);
            }
        }
    }

    @Test
    void shouldFailEveryPendingPullWhenTheConnectionDropsMidTransfer() throws Exception {
        try (TestPageProvider provider = new TestPageProvider("p0", 1, BIG, 64, 4);
                KvPageServer server = serve(provider);
                FaultyProxy proxy = new FaultyProxy(server.port(), FaultyProxy.Fault.CLOSE, 3 << 20);
                NettyKvTransport transport = transport(new Directory().put("p0", proxy.port()), TIMEOUT, 1 << 20);
                KvCacheStorage dst = new KvCacheStorage(BIG, 64)) {
            List<CompletableFuture<Void>> pulls = new ArrayList<>();
            for (int p = 0; p < 4; p++) {
                int[] blocks = new int[16];
                for (int i = 0; i < 16; i++) {
                    blocks[i] = p * 16 + i;
                }
                pulls.add(transport.pull(provider.lease(blocks), dst, blocks));
            }

            for (CompletableFuture<Void> pull : pulls) {
                Throwable cause = failure(pull);
                assertThat(cause).isInstanceOf(KvTransferException.class).hasMessageContaining("lost");
                assertThat(((KvTransferException) cause).status()).isEqualTo(KvTransferStatus.CONNECTION_LOST);
            }
            assertThat(transport.payloadBytesReceived()).isPositive().isLessThan(3L << 20);
        }
    }

    @Test
    void shouldTimeOutWhenTheProviderNeverAnswers() throws Exception {
        try (TestPageProvider provider = new TestPageProvider("p0", 1, SPEC, 8, 5);
                KvPageServer server = serve(provider);
                NettyKvTransport transport = transport(new Directory().put("p0", server.port()),
                        Duration.ofMillis(300), 1 << 20);
                KvCacheStorage dst = new KvCacheStorage(SPEC, 8)) {
            provider.holdValidation();
            long start = System.nanoTime();

            Throwable cause = failure(transport.pull(provider.lease(1, 2), dst, new int[] {1, 2}));

            long elapsedMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
            assertThat(cause).isInstanceOf(TimeoutException.class)
                    .hasMessageContaining("timed out after 300 ms without a page, 0 of 8 pages received");
            assertThat(elapsedMillis).isBetween(290L, 5_000L);
        }
    }

    @Test
    void shouldKeepAPullWhosePagesKeepComingPastTheTimeoutAsAWhole() throws Exception {
        try (TestPageProvider provider = new TestPageProvider("p0", 1, SPEC, 8, 9);
                KvPageServer server = serve(provider);
                NettyKvTransport transport = transport(new Directory().put("p0", server.port()),
                        Duration.ofMillis(600), 1 << 20);
                KvCacheStorage dst = new KvCacheStorage(SPEC, 8)) {
            // a prefill still computing: one layer of blocks 1 and 2 becomes final every 250 ms
            int[] blocks = {1, 2};
            LayerProgress progress = new LayerProgress(SPEC.numLayers(), blocks, 2 * SPEC.blockSize(), SPEC.blockSize());
            provider.progress = progress;
            long start = System.nanoTime();
            CompletableFuture<Void> pull = transport.pull(provider.lease(blocks), dst, new int[] {5, 6});
            for (int layer = 0; layer < SPEC.numLayers(); layer++) {
                Thread.sleep(250);
                progress.advance(layer, 2 * SPEC.blockSize());
            }
            progress.finish();

            pull.get(10, TimeUnit.SECONDS);
            long elapsedMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
            assertThat(elapsedMillis).as("the pull as a whole outlasted the 600 ms timeout").isGreaterThan(900L);
            assertPagesEqual(provider.storage(), blocks, dst, new int[] {5, 6}, 0, SPEC.numLayers());
        }
    }

    @Test
    void shouldTimeOutWhenTheServerStallsMidTransfer() throws Exception {
        try (TestPageProvider provider = new TestPageProvider("p0", 1, BIG, 32, 6);
                KvPageServer server = serve(provider);
                FaultyProxy proxy = new FaultyProxy(server.port(), FaultyProxy.Fault.STALL, 1 << 20);
                NettyKvTransport transport = transport(new Directory().put("p0", proxy.port()),
                        Duration.ofMillis(500), 256 << 10);
                KvCacheStorage dst = new KvCacheStorage(BIG, 32)) {
            int[] blocks = new int[32];
            for (int i = 0; i < 32; i++) {
                blocks[i] = i;
            }

            Throwable cause = failure(transport.pull(provider.lease(blocks), dst, blocks));

            assertThat(cause).isInstanceOf(TimeoutException.class).hasMessageContaining("timed out after 500 ms without a new page, ");
            assertThat(proxy.faulted.getCount()).isZero();
            assertThat(transport.payloadBytesReceived()).isPositive().isLessThan(1L << 20);
        }
    }

    @Test
    void shouldWriteNothingMoreIntoTheDestinationOnceCancelled() throws Exception {
        try (TestPageProvider provider = new TestPageProvider("p0", 1, BIG, 130, 7);
                KvPageServer server = serve(provider);
                NettyKvTransport transport = transport(new Directory().put("p0", server.port()), TIMEOUT, 64 << 10);
                KvCacheStorage dst = new KvCacheStorage(BIG, 130);
                Arena arena = Arena.ofConfined()) {
            int[] blocks = new int[128];
            for (int i = 0; i < blocks.length; i++) {
                blocks[i] = i;
            }
            KvHandle big = provider.lease(blocks);
            CompletableFuture<Void> pull = transport.pull(big, dst, blocks);
            await("the first pages", () -> transport.payloadBytesReceived() > 0);

            assertThat(pull.cancel(true)).as("cancelled while in flight").isTrue();
            MemorySegment[] snapshot = new MemorySegment[BIG.numLayers()];
            for (int layer = 0; layer < snapshot.length; layer++) {
                snapshot[layer] = arena.allocate(dst.layer(layer).byteSize());
                snapshot[layer].copyFrom(dst.layer(layer));
            }
            KvHandle small = provider.lease(128, 129);
            transport.pull(small, dst, new int[] {128, 129}).get(20, TimeUnit.SECONDS);

            for (int layer = 0; layer < snapshot.length; layer++) {
                long cancelledRegion = dst.pageOffset(128);
                assertThat(snapshot[layer].asSlice(0, cancelledRegion).mismatch(dst.layer(layer).asSlice(0, cancelledRegion)))
                        .as("layer %d of the cancelled pull changed after cancel", layer).isEqualTo(-1L);
            }
            assertThat(server.payloadBytesSent() - small.byteSize()).as("server stopped sending the cancelled pull")
                    .isLessThan(big.byteSize());
        }
    }

    @Test
    void shouldDeliverEachReleaseToTheProviderOnceAndStayIdempotent() throws Exception {
        try (TestPageProvider provider = new TestPageProvider("p0", 1, SPEC, 8, 8);
                KvPageServer server = serve(provider);
                NettyKvTransport transport = transport(new Directory().put("p0", server.port()), TIMEOUT, 1 << 20);
                KvCacheStorage dst = new KvCacheStorage(SPEC, 8)) {
            KvHandle handle = provider.lease(1, 2);

            transport.release(handle);
            await("the release", () -> provider.releaseCalls.size() == 1);
            transport.release(handle);
            await("the second release", () -> provider.releaseCalls.size() == 2);

            assertThat(provider.releaseCalls).containsExactly(handle.leaseId(), handle.leaseId());
            assertThat(provider.freed).containsExactly(handle.leaseId());
            assertError(transport.pull(handle, dst, new int[] {3, 4}), KvTransferStatus.UNKNOWN_LEASE);
            assertThat(provider.releaseCalls).hasSize(2);
        }
    }

    @Test
    void shouldDeliverRenewalsToTheProviderBeforeAndAfterAConnectionExists() throws Exception {
        try (TestPageProvider provider = new TestPageProvider("p0", 1, SPEC, 8, 8);
                KvPageServer server = serve(provider);
                NettyKvTransport transport = transport(new Directory().put("p0", server.port()), TIMEOUT, 1 << 20);
                KvCacheStorage dst = new KvCacheStorage(SPEC, 8)) {
            KvHandle handle = provider.lease(1, 2);

            transport.renew(handle); // connects first
            await("the first renewal", () -> provider.renewCalls.size() == 1);
            transport.renew(handle);
            await("the second renewal", () -> provider.renewCalls.size() == 2);

            assertThat(provider.renewCalls).containsExactly(handle.leaseId(), handle.leaseId());
            assertThat(provider.releaseCalls).isEmpty();
            transport.pull(handle, dst, new int[] {3, 4}).get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void shouldDropARenewalForAWorkerItCannotReach() throws Exception {
        int port;
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = socket.getLocalPort();
        }
        try (NettyKvTransport transport = transport(new Directory().put("p0", port), TIMEOUT, 1 << 20)) {
            KvHandle handle = new KvHandle("p0", 1, 1, new int[] {1}, 1, SPEC);
            transport.renew(handle);
            transport.renew(new KvHandle("nowhere", 1, 1, new int[] {1}, 1, SPEC)); // unresolvable: dropped, no throw
        }
    }

    @Test
    void shouldFailAtOnceWhenNothingListens() throws Exception {
        int port;
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = socket.getLocalPort();
        }
        try (NettyKvTransport transport = transport(new Directory().put("p0", port), TIMEOUT, 1 << 20);
                KvCacheStorage dst = new KvCacheStorage(SPEC, 8)) {
            KvHandle handle = new KvHandle("p0", 1, 1, new int[] {1}, 1, SPEC);

            Throwable cause = failure(transport.pull(handle, dst, new int[] {1}));

            assertThat(cause).isInstanceOf(KvTransferException.class).hasMessageContaining("cannot connect");
        }
    }

    @Test
    void shouldFailPendingPullsAndLeaveNoThreadsWhenClosedTwice() throws Exception {
        TestPageProvider provider = new TestPageProvider("p0", 1, SPEC, 8, 9);
        KvPageServer server = serve(provider);
        NettyKvTransport transport = transport(new Directory().put("p0", server.port()), TIMEOUT, 1 << 20);
        KvCacheStorage dst = new KvCacheStorage(SPEC, 8);
        transport.pull(provider.lease(1), dst, new int[] {1}).get(20, TimeUnit.SECONDS);
        provider.holdValidation();
        CompletableFuture<Void> pending = transport.pull(provider.lease(2), dst, new int[] {2});
        await("the server to hold the pull", () -> provider.held.size() == 1);

        transport.close();
        transport.close();
        server.close();
        server.close();

        assertThat(failure(pending)).isInstanceOf(KvTransferException.class).hasMessageContaining("closed");
        await("the data-plane threads to end", () -> threadsNamed("tandem-kv-") == 0);
        assertThat(failure(transport.pull(provider.lease(3), dst, new int[] {3})))
                .isInstanceOf(IllegalStateException.class);
        dst.close();
        provider.close();
    }

    private static void assertError(CompletableFuture<Void> pull, KvTransferStatus status) throws Exception {
        Throwable cause = failure(pull);
        assertThat(cause).isInstanceOf(KvTransferException.class).hasMessageStartingWith(status.name() + ": KV pull")
                .hasMessageContaining("lease");
        assertThat(((KvTransferException) cause).status()).isEqualTo(status);
    }
}
