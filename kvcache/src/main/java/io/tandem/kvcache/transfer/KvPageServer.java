package io.tandem.kvcache.transfer;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.LengthFieldBasedFrameDecoder;
import io.netty.util.concurrent.DefaultThreadFactory;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The prefill side of the KV data plane: serves pages of a {@link KvPageProvider}'s storage to
 * {@link NettyKvTransport} pullers over TCP, in the {@link KvFrame} format. Many connections,
 * many pulls per connection; per connection the puller's credit window and the channel's
 * writability bound the bytes queued, and ready pulls share the connection round-robin by run.
 *
 * <p>Life cycle: {@link #start} binds, {@link #close()} stops accepting, closes every connection
 * (their pullers fail at once with {@link KvTransferStatus#CONNECTION_LOST}) and waits for the
 * I/O threads ({@value #THREAD_NAME_PREFIX}*) to end. Close the server before the provider's
 * storage: payloads are written straight from that memory.
 */
public final class KvPageServer implements AutoCloseable {
    /** Prefix of the names of this server's I/O threads. */
    public static final String THREAD_NAME_PREFIX = "tandem-kv-server";
    /** Default cap on one {@code PAGES} payload; a run longer than this is split (a page is never). */
    public static final int DEFAULT_MAX_FRAME_PAYLOAD_BYTES = 256 << 10;
    /** Outbound bytes queued on a connection above which it stops sending until it drains to low. */
    private static final WriteBufferWaterMark WATER_MARK = new WriteBufferWaterMark(256 << 10, 1 << 20);
    private static final long SHUTDOWN_TIMEOUT_SECONDS = 5;

    private final KvPageProvider provider;
    private final int ioThreads;
    private final int maxFramePayloadBytes;
    private final AtomicLong payloadBytesSent = new AtomicLong();
    private final AtomicInteger openConnections = new AtomicInteger();
    private final AtomicLong pagesSentWhileComputing = new AtomicLong();
    private EventLoopGroup group;
    private Channel serverChannel;
    private boolean closed;

    /** A server with {@code ioThreads} I/O threads and {@link #DEFAULT_MAX_FRAME_PAYLOAD_BYTES}. */
    public KvPageServer(KvPageProvider provider, int ioThreads) {
        this(provider, ioThreads, DEFAULT_MAX_FRAME_PAYLOAD_BYTES);
    }

    /**
     * @param provider             storage and leases to serve
     * @param ioThreads            I/O threads (accepting and all connections), ≥ 1
     * @param maxFramePayloadBytes cap on one {@code PAGES} payload (bytes, ≥ 1; rounded down to
     *                             whole pages, at least one page)
     */
    public KvPageServer(KvPageProvider provider, int ioThreads, int maxFramePayloadBytes) {
        if (ioThreads < 1) {
            throw new IllegalArgumentException("ioThreads must be >= 1, got " + ioThreads);
        }
        if (maxFramePayloadBytes < 1) {
            throw new IllegalArgumentException("maxFramePayloadBytes must be >= 1, got " + maxFramePayloadBytes);
        }
        this.provider = provider;
        this.ioThreads = ioThreads;
        this.maxFramePayloadBytes = maxFramePayloadBytes;
    }

    /**
     * Binds to {@code host:port} and starts serving.
     *
     * @param port TCP port, 0 for an ephemeral one (see {@link #port()})
     * @return this
     * @throws IllegalStateException if already started or closed, or if the address cannot be
     *                               bound (naming it)
     */
    public synchronized KvPageServer start(String host, int port) {
        if (group != null || closed) {
            throw new IllegalStateException("KV page server already " + (closed ? "closed" : "started"));
        }
        group = new NioEventLoopGroup(ioThreads, new DefaultThreadFactory(THREAD_NAME_PREFIX, true));
        ServerBootstrap bootstrap = new ServerBootstrap()
                .group(group)
                .channel(NioServerSocketChannel.class)
                .childOption(ChannelOption.TCP_NODELAY, true)
                .childOption(ChannelOption.WRITE_BUFFER_WATER_MARK, WATER_MARK)
                .childHandler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel channel) {
                        channel.pipeline().addLast(
                                new LengthFieldBasedFrameDecoder(KvFrame.MAX_CONTROL_FRAME_LENGTH, 0,
                                        KvFrame.LENGTH_FIELD_LENGTH),
                                new KvPageServerHandler(KvPageServer.this, provider, maxFramePayloadBytes));
                    }
                });
        try {
            serverChannel = bootstrap.bind(host, port).sync().channel();
        } catch (Exception e) {
            group.shutdownGracefully(0, SHUTDOWN_TIMEOUT_SECONDS, TimeUnit.SECONDS).awaitUninterruptibly();
            closed = true;
            if (e instanceof InterruptedException) {
                Thread.currentThread().interrupt();
            }
            throw new IllegalStateException("cannot bind the KV page server to " + host + ":" + port, e);
        }
        return this;
    }

    /** The bound port (the ephemeral one if started with 0). */
    public synchronized int port() {
        if (serverChannel == null) {
            throw new IllegalStateException("KV page server not started");
        }
        return ((InetSocketAddress) serverChannel.localAddress()).getPort();
    }

    /** Payload bytes handed to the network so far, all connections (kv_transfer_bytes_total). */
    public long payloadBytesSent() {
        return payloadBytesSent.get();
    }

    /**
     * Pages sent while their lease's prefill was still computing other pages (an early handle):
     * the transfer that overlapped the prefill. 0 when every pull came after its prefill ended.
     */
    public long pagesSentWhileComputing() {
        return pagesSentWhileComputing.get();
    }

    void countPagesSentWhileComputing(long pages) {
        pagesSentWhileComputing.addAndGet(pages);
    }

    /** Data-plane connections open now. */
    public int openConnections() {
        return openConnections.get();
    }

    void countPayloadBytes(long bytes) {
        payloadBytesSent.addAndGet(bytes);
    }

    void countConnection(int delta) {
        openConnections.addAndGet(delta);
    }

    /** Stops accepting, closes every connection and ends the I/O threads. Idempotent. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (group == null) {
            return;
        }
        if (serverChannel != null) {
            serverChannel.close().awaitUninterruptibly();
        }
        // Shutting the loops down closes every connection they serve.
        group.shutdownGracefully(0, SHUTDOWN_TIMEOUT_SECONDS, TimeUnit.SECONDS).awaitUninterruptibly();
    }
}
