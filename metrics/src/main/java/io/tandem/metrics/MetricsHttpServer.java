package io.tandem.metrics;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.prometheus.metrics.expositionformats.ExpositionFormatWriter;
import io.prometheus.metrics.expositionformats.ExpositionFormats;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A worker's {@code GET /metrics} endpoint (Prometheus text, or OpenMetrics when the scraper asks
 * for it), on the JDK's HTTP server: workers serve no other HTTP, so they need no Netty HTTP stack.
 * Any other path is 404, any other method 405. One thread serves scrapes; a scrape only reads the
 * engines' published snapshots.
 */
public final class MetricsHttpServer implements AutoCloseable {
    private final PrometheusRegistry registry;
    private final ExpositionFormats formats = ExpositionFormats.init();
    private final AtomicBoolean started = new AtomicBoolean();
    private final AtomicBoolean closed = new AtomicBoolean();
    private ExecutorService executor;
    private HttpServer server;

    /** @param registry the metrics to expose */
    public MetricsHttpServer(PrometheusRegistry registry) {
        this.registry = registry;
    }

    /**
     * Binds and starts serving.
     *
     * @param port TCP port; {@code 0} picks a free one (see {@link #port()})
     * @return this
     * @throws IOException           if the port cannot be bound
     * @throws IllegalStateException if already started or closed
     */
    public MetricsHttpServer start(String host, int port) throws IOException {
        if (closed.get() || !started.compareAndSet(false, true)) {
            throw new IllegalStateException("the metrics server was already started or closed");
        }
        server = HttpServer.create(new InetSocketAddress(host, port), 16);
        server.createContext("/", this::handle);
        executor = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "tandem-metrics-http");
            t.setDaemon(true);
            return t;
        });
        server.setExecutor(executor);
        server.start();
        return this;
    }

    /** The bound TCP port (the ephemeral one when started with port 0). */
    public int port() {
        if (server == null) {
            throw new IllegalStateException("the metrics server is not started");
        }
        return server.getAddress().getPort();
    }

    private void handle(HttpExchange exchange) throws IOException {
        try (exchange) {
            if (!exchange.getRequestURI().getPath().equals("/metrics")) {
                sendText(exchange, 404, "not found; metrics are at /metrics\n");
                return;
            }
            if (!exchange.getRequestMethod().equals("GET")) {
                exchange.getResponseHeaders().set("Allow", "GET");
                sendText(exchange, 405, "method not allowed; use GET\n");
                return;
            }
            ExpositionFormatWriter writer = formats.findWriter(exchange.getRequestHeaders().getFirst("Accept"));
            if (!writer.isAvailable()) {
                writer = formats.getPrometheusTextFormatWriter();
            }
            ByteArrayOutputStream body = new ByteArrayOutputStream(4096);
            writer.write(body, registry.scrape());
            exchange.getResponseHeaders().set("Content-Type", writer.getContentType());
            send(exchange, 200, body.toByteArray());
        }
    }

    private static void sendText(HttpExchange exchange, int status, String text) throws IOException {
        exchange.getResponseHeaders().set("Content-Type", "text/plain; charset=utf-8");
        send(exchange, status, text.getBytes(StandardCharsets.UTF_8));
    }

    private static void send(HttpExchange exchange, int status, byte[] body) throws IOException {
        exchange.sendResponseHeaders(status, body.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(body);
        }
    }

    /** Stops serving at once (a scrape in progress is cut off). Idempotent. */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true) || server == null) {
            return;
        }
        server.stop(0);
        executor.shutdownNow();
    }
}
