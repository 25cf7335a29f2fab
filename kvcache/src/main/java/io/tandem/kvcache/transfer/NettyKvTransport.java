package io.tandem.kvcache.transfer;

import io.netty.bootstrap.Bootstrap;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.tandem.kvcache.KvCacheStorage;
import io.tandem.kvcache.KvHandle;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The decode side of the KV data plane: pulls pages from {@link KvPageServer}s over TCP
 * ({@link KvFrame} format), one pooled connection per server address.
 *
 * <ul>
 * <li>{@link #pull} returns at once; the future completes on a Netty thread (dependent stages run
 *     there too, so keep them short or poll the future, as the decode engine does).</li>
 * <li>Pages are copied from the socket's buffers straight into {@code dst}; each run's CRC32C is
 *     checked. Once the future is complete, however it completed, no more bytes are written into
 *     {@code dst}.</li>
 * <li>Per connection at most {@code maxInFlightBytes} of payload is outstanding (credit window,
 *     see {@link KvFrame}), shared by all pulls on it.</li>
 * <li>A pull fails with {@link java.util.concurrent.TimeoutException} once {@code kvTransferTimeout}
 *     passes without a page: counted from the call (connecting included), then from the last page
 *     run received, so a pull that overlaps a long prefill lasts as long as pages keep coming, and
 *     one from a hung or vanished peer ends within the timeout; a lost connection
 *     fails every pull on it at once with {@link KvTransferStatus#CONNECTION_LOST}; a server error
 *     or corrupt run with a {@link KvTransferException} naming the status. Cancelling the future
 *     stops the pull (the server is told; frames already on the wire are dropped).</li>
 * </ul>
 *
 * {@link #close()} fails whatever is still pending and ends the I/O threads
 * ({@value #THREAD_NAME_PREFIX}*).
 */
public final class NettyKvTransport implements KvTransport, AutoCloseable {
    /** Prefix of the names of this transport's I/O threads. */
    public static final String THREAD_NAME_PREFIX = "tandem-kv-client";
    private static final Logger LOG = LoggerFactory.getLogger(NettyKvTransport.class);
    private static final int CONNECT_TIMEOUT_MILLIS = 5_000;
    private static final long SHUTDOWN_TIMEOUT_SECONDS = 5;

    private final Function<String, InetSocketAddress> resolver;
    private final long timeoutNanos;
    private final long maxInFlightBytes;
    private final EventLoopGroup group;
    private final ConcurrentHashMap<InetSocketAddress, KvPeerConnection> peers = new ConcurrentHashMap<>();
    /** Pulls not yet complete, so that {@link #close()} can fail them. */
    private final Set<InboundPull> live = ConcurrentHashMap.newKeySet();
    private final AtomicLong nextRequestId = new AtomicLong(1);
    private final AtomicLong payloadBytesReceived = new AtomicLong();
    private final AtomicBoolean closed = new AtomicBoolean();

    /**
     * @param resolver          data-plane address of a prefill worker, by {@link KvHandle#workerId()}
     * @param kvTransferTimeout how long a pull may go without a page (from the call, connecting
     *                          included, then from the last page run) before it fails
     * @param maxInFlightBytes  credit window per connection: payload bytes the server may send
     *                          ahead of what this side has consumed; at least one page of any
     *                          handle pulled
     * @param ioThreads         I/O threads shared by all connections, ≥ 1
     */
    public NettyKvTransport(Function<String, InetSocketAddress> resolver, Duration kvTransferTimeout,
            long maxInFlightBytes, int ioThreads) {
        if (kvTransferTimeout.isNegative() || kvTransferTimeout.isZero()) {
            throw new IllegalArgumentException("kvTransferTimeout must be positive, got " + kvTransferTimeout);
        }
        if (maxInFlightBytes < 1) {
            throw new IllegalArgumentException("maxInFlightBytes must be >= 1, got " + maxInFlightBytes);
        }
        if (ioThreads < 1) {
            throw new IllegalArgumentException("ioThreads must be >= 1, got " + ioThreads);
        }
        this.resolver = resolver;
        this.timeoutNanos = kvTransferTimeout.toNanos();
        this.maxInFlightBytes = maxInFlightBytes;
        this.group = new NioEventLoopGroup(ioThreads, new DefaultThreadFactory(THREAD_NAME_PREFIX, true));
    }

    /** Pulls every layer: {@code pull(handle, dst, dstBlockIds, 0, numLayers)}. */
    @Override
    public CompletableFuture<Void> pull(KvHandle handle, KvCacheStorage dst, int[] dstBlockIds) {
        return pull(handle, dst, dstBlockIds, 0, handle.spec().numLayers());
    }

    /**
     * Copies pages {@code (layer, handle.blockIds()[i])} into {@code (layer, dstBlockIds[i])} of
     * {@code dst} for the layers {@code [layerFrom, layerTo)} only, so that a puller can fetch the
     * layers a prefill has finished while it computes the rest.
     *
     * @return completes when those pages are written, or exceptionally: {@link
     *         IllegalArgumentException} for a request that does not fit {@code dst} or the window,
     *         {@link KvTransferException}, {@link java.util.concurrent.TimeoutException}
     */
    public CompletableFuture<Void> pull(KvHandle handle, KvCacheStorage dst, int[] dstBlockIds, int layerFrom,
            int layerTo) {
        String invalid = checkPull(handle, dst, dstBlockIds, layerFrom, layerTo);
        if (invalid != null) {
            return CompletableFuture.failedFuture(new IllegalArgumentException(invalid));
        }
        if (closed.get()) {
            return CompletableFuture.failedFuture(new IllegalStateException("KV transport closed"));
        }
        if (dstBlockIds.length == 0) {
            return CompletableFuture.completedFuture(null);
        }
        KvPeerConnection peer;
        InetSocketAddress address;
        try {
            address = resolver.apply(handle.workerId());
            peer = peer(address);
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(new KvTransferException(KvTransferStatus.CONNECTION_LOST,
                    "cannot reach prefill worker " + handle.workerId(), e));
        }
        InboundPull pull = new InboundPull(nextRequestId.getAndIncrement(), handle, dst, dstBlockIds, layerFrom,
                layerTo, address, System.nanoTime() + timeoutNanos);
        live.add(pull);
        EventLoop loop = peer.loop();
        execute(loop, pull, () -> peer.submit(pull));
        pull.future.whenComplete((ignored, failure) -> {
            live.remove(pull);
            execute(loop, null, () -> peer.completed(pull));
        });
        return pull.future;
    }

    /**
     * Sends a {@code RELEASE} for the handle's lease to its worker, on the pooled connection (fire
     * and forget: a release that cannot be delivered is logged and the lease expires there). Idempotent: the worker's
     * provider ignores a lease it no longer holds.
     */
    @Override
    public void release(KvHandle handle) {
        if (closed.get()) {
            LOG.warn("KV transport closed; lease {} of worker {} will expire", handle.leaseId(), handle.workerId());
            return;
        }
        try {
            KvPeerConnection peer = peer(resolver.apply(handle.workerId()));
            execute(peer.loop(), null, () -> peer.release(handle.epoch(), handle.leaseId()));
        } catch (RuntimeException e) {
            LOG.warn("cannot release lease {} of worker {}; it will expire", handle.leaseId(), handle.workerId(), e);
        }
    }

    /**
     * Sends a {@code RENEW} for the handle's lease to its worker, on the pooled connection (fire and
     * forget, connecting if need be): a renewal that cannot be delivered is dropped, and a lease the
     * worker no longer holds fails the next pull of it.
     */
    @Override
    public void renew(KvHandle handle) {
        if (closed.get()) {
            return;
        }
        try {
            KvPeerConnection peer = peer(resolver.apply(handle.workerId()));
            execute(peer.loop(), null, () -> peer.renew(handle.epoch(), handle.leaseId()));
        } catch (RuntimeException e) {
            LOG.debug("cannot renew lease {} of worker {}", handle.leaseId(), handle.workerId(), e);
        }
    }

    /** Payload bytes received so far, all connections, dropped ones included (kv_transfer_bytes_total). */
    public long payloadBytesReceived() {
        return payloadBytesReceived.get();
    }

    /** Fails every pending pull, closes every connection and ends the I/O threads. Idempotent. */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        for (InboundPull pull : live) {
            pull.future.completeExceptionally(new KvTransferException(KvTransferStatus.CONNECTION_LOST,
                    pull.describe() + ": the KV transport was closed"));
        }
        for (KvPeerConnection peer : peers.values()) {
            peer.close();
        }
        group.shutdownGracefully(0, SHUTDOWN_TIMEOUT_SECONDS, TimeUnit.SECONDS).awaitUninterruptibly();
    }

    long timeoutNanos() {
        return timeoutNanos;
    }

    long timeoutMillis() {
        return TimeUnit.NANOSECONDS.toMillis(timeoutNanos);
    }

    void countPayloadBytes(long bytes) {
        payloadBytesReceived.addAndGet(bytes);
    }

    /** Drops a peer whose connection ended, so that the next pull connects afresh. */
    void forget(InetSocketAddress address, KvPeerConnection peer) {
        peers.remove(address, peer);
    }

    /**
     * The live connection to {@code address}, connecting if there is none. The connect itself runs
     * on the peer's event loop, outside the map's lock, since its failure removes the peer again.
     */
    private KvPeerConnection peer(InetSocketAddress address) {
        KvPeerConnection existing = peers.get(address);
        if (existing != null && !existing.isClosed()) {
            return existing;
        }
        KvPeerConnection fresh = new KvPeerConnection(this, address, maxInFlightBytes, group.next());
        KvPeerConnection winner = peers.compute(address, (key, current) ->
                current != null && !current.isClosed() ? current : fresh);
        if (winner == fresh) {
            Bootstrap bootstrap = new Bootstrap()
                    .group(fresh.loop())
                    .channel(NioSocketChannel.class)
                    .option(ChannelOption.TCP_NODELAY, true)
                    .option(ChannelOption.SO_KEEPALIVE, true)
                    .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, CONNECT_TIMEOUT_MILLIS)
                    .handler(fresh);
            fresh.loop().execute(() -> fresh.connect(bootstrap));
        }
        return winner;
    }

    /** Runs {@code task} on {@code loop}; if the loop is gone (closing), fails {@code pull} instead. */
    private static void execute(EventLoop loop, InboundPull pull, Runnable task) {
        try {
            loop.execute(task);
        } catch (RejectedExecutionException e) {
            if (pull != null) {
                pull.future.completeExceptionally(new KvTransferException(KvTransferStatus.CONNECTION_LOST,
                        pull.describe() + ": the KV transport was closed", e));
            }
        }
    }

    private String checkPull(KvHandle handle, KvCacheStorage dst, int[] dstBlockIds, int layerFrom, int layerTo) {
        if (!handle.spec().equals(dst.spec())) {
            return "KV handle geometry " + handle.spec() + " does not match destination " + dst.spec();
        }
        if (dstBlockIds.length != handle.blockIds().length) {
            return "KV handle has " + handle.blockIds().length + " blocks, destination " + dstBlockIds.length;
        }
        if (dstBlockIds.length > KvFrame.MAX_PULL_BLOCKS) {
            return "a pull takes at most " + KvFrame.MAX_PULL_BLOCKS + " blocks, got " + dstBlockIds.length;
        }
        for (int i = 0; i < dstBlockIds.length; i++) {
            if (dstBlockIds[i] < 0 || dstBlockIds[i] >= dst.numBlocks()) {
                return "destination block id " + dstBlockIds[i] + " at index " + i + " is outside [0, "
                        + dst.numBlocks() + ")";
            }
        }
        int numLayers = handle.spec().numLayers();
        if (layerFrom < 0 || layerTo > numLayers || layerFrom >= layerTo) {
            return "layers [" + layerFrom + ", " + layerTo + ") are not a range inside [0, " + numLayers + ")";
        }
        if (handle.spec().pageBytes() > maxInFlightBytes) {
            return "a page of " + handle.spec().pageBytes() + " bytes does not fit the window of " + maxInFlightBytes
                    + " bytes in flight";
        }
        return null;
    }
}
