package io.tandem.router.openai;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.netty.util.concurrent.Future;
import io.prometheus.metrics.expositionformats.ExpositionFormats;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.tandem.router.GenerationService;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The OpenAI-compatible HTTP front end of the router (as vLLM's and llama.cpp's servers expose it):
 * {@code POST /v1/completions}, {@code POST /v1/chat/completions} (JSON or SSE streaming),
 * {@code GET /v1/models}, {@code GET /health}, {@code GET /metrics}, on Netty NIO event loops.
 *
 * <p>Lifecycle: construct, {@link #start}, then {@link #close} (idempotent): closes the listening
 * socket and every connection, which cancels generations in flight, and stops the event loops.
 */
public final class OpenAiHttpServer implements AutoCloseable {

    /** Largest request body accepted by default: 8 MiB, a prompt of about a million token ids. */
    public static final int DEFAULT_MAX_REQUEST_BYTES = 8 << 20;

    private static final int MAX_INITIAL_LINE_BYTES = 4096;
    private static final int MAX_HEADER_BYTES = 16 << 10;
    private static final int MAX_CHUNK_BYTES = 64 << 10;
    private static final long QUIET_PERIOD_MS = 0;
    private static final long SHUTDOWN_TIMEOUT_MS = 5_000;

    private final GenerationService service;
    private final PrometheusRegistry registry;
    private final int maxRequestBytes;
    private final int ioThreads;
    private final ObjectMapper mapper = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    private final ExpositionFormats expositionFormats = ExpositionFormats.init();
    private final AtomicBoolean started = new AtomicBoolean();
    private final AtomicBoolean closed = new AtomicBoolean();

    private EventLoopGroup bossGroup;
    private EventLoopGroup workerGroup;
    private Channel serverChannel;

    /** A server with an 8 MiB body limit and one I/O thread per two cores. */
    public OpenAiHttpServer(GenerationService service, PrometheusRegistry registry) {
        this(service, registry, DEFAULT_MAX_REQUEST_BYTES, Math.max(1, Runtime.getRuntime().availableProcessors() / 2));
    }

    /**
     * @param service         the router the endpoints call
     * @param registry        metrics exposed at {@code /metrics}
     * @param maxRequestBytes largest request body accepted; larger ones get 413
     * @param ioThreads       Netty event loop threads serving connections
     */
    public OpenAiHttpServer(GenerationService service, PrometheusRegistry registry, int maxRequestBytes, int ioThreads) {
        if (maxRequestBytes < 1 || ioThreads < 1) {
            throw new IllegalArgumentException("maxRequestBytes and ioThreads must be >= 1, got " + maxRequestBytes
                    + " and " + ioThreads);
        }
        this.service = service;
        this.registry = registry;
        this.maxRequestBytes = maxRequestBytes;
        this.ioThreads = ioThreads;
    }

    /**
     * Binds and starts serving.
     *
     * @param host address to bind, e.g. {@code 0.0.0.0} or {@code 127.0.0.1}
     * @param port TCP port; {@code 0} picks a free one (see {@link #port()})
     * @return this
     * @throws IllegalStateException if already started or closed
     * @throws InterruptedException  if interrupted while binding
     */
    public OpenAiHttpServer start(String host, int port) throws InterruptedException {
        if (closed.get() || !started.compareAndSet(false, true)) {
            throw new IllegalStateException("the server was already started or closed");
        }
        bossGroup = new NioEventLoopGroup(1, new DefaultThreadFactory("openai-http-accept", true));
        workerGroup = new NioEventLoopGroup(ioThreads, new DefaultThreadFactory("openai-http-io", true));
        ServerBootstrap bootstrap = new ServerBootstrap()
                .group(bossGroup, workerGroup)
                .channel(NioServerSocketChannel.class)
                .option(ChannelOption.SO_BACKLOG, 1024)
                .childOption(ChannelOption.TCP_NODELAY, true)
                .childHandler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel channel) {
                        channel.pipeline()
                                .addLast("http", new HttpServerCodec(MAX_INITIAL_LINE_BYTES, MAX_HEADER_BYTES, MAX_CHUNK_BYTES))
                                .addLast("aggregate", new RequestAggregator(maxRequestBytes))
                                .addLast("openai", new OpenAiHttpHandler(
                                        service, registry, expositionFormats, mapper, maxRequestBytes));
                    }
                });
        try {
            serverChannel = bootstrap.bind(new InetSocketAddress(host, port)).sync().channel();
        } catch (InterruptedException | RuntimeException e) {
            close();
            throw e;
        }
        return this;
    }

    /** The bound TCP port (the ephemeral one when started with port 0). */
    public int port() {
        if (serverChannel == null) {
            throw new IllegalStateException("the server is not started");
        }
        return ((InetSocketAddress) serverChannel.localAddress()).getPort();
    }

    /**
     * Stops accepting, closes every connection (cancelling their generations) and shuts the event
     * loops down, waiting up to 5 s for them. Idempotent.
     */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        if (serverChannel != null) {
            serverChannel.close().awaitUninterruptibly();
        }
        Future<?> boss = bossGroup == null ? null
                : bossGroup.shutdownGracefully(QUIET_PERIOD_MS, SHUTDOWN_TIMEOUT_MS, TimeUnit.MILLISECONDS);
        Future<?> workers = workerGroup == null ? null
                : workerGroup.shutdownGracefully(QUIET_PERIOD_MS, SHUTDOWN_TIMEOUT_MS, TimeUnit.MILLISECONDS);
        if (boss != null) {
            boss.awaitUninterruptibly(SHUTDOWN_TIMEOUT_MS);
        }
        if (workers != null) {
            workers.awaitUninterruptibly(SHUTDOWN_TIMEOUT_MS);
        }
    }
}
