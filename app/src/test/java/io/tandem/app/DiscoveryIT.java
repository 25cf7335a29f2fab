package io.tandem.app;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.tandem.engine.ReferenceModel;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@code tandem router --discovery dns:NAME:PORT} over real worker processes and a real name lookup:
 * each worker listens on its own loopback address (127.0.0.2, .3, … all reach {@code lo} on Linux)
 * at the same gRPC port, as pods behind a Kubernetes headless Service do, and the router JVM
 * resolves {@code NAME} through the JDK's hosts-file resolver ({@code -Djdk.net.hosts.file}), one
 * line per address, which the test rewrites as DNS would change. Workers that appear join the pool
 * of the role their health reports, workers that disappear leave it without losing the stream
 * they serve, and requests go where the pools say (read from each worker's own {@code /metrics}).
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class DiscoveryIT {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String NAME = "workers.tandem.test";
    private static final String QUERIES = "tandem:prefix_cache_queries_total";
    private static final String PULLED = "tandem:kv_transfer_pages_total";
    /** How long the first prefill worker holds each KV pull: the request it serves outlasts its removal. */
    private static final long HELD_PULL_MILLIS = 6000;
    private static final Pattern ROUTER_READY = LocalCluster.ROUTER_READY;

    private final List<TandemProcess> processes = new ArrayList<>();
    private HttpClient http;
    private ReferenceContinuations reference;
    private Path hosts;

    @BeforeEach
    void setUp() throws Exception {
        http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5)).build();
        reference = new ReferenceContinuations();
        hosts = Files.createTempDirectory(Files.createDirectories(Path.of("target")), "discovery-").resolve("hosts");
    }

    @AfterEach
    void tearDown() {
        // the router first, then the workers
        for (int i = processes.size() - 1; i >= 0; i--) {
            processes.get(i).close();
        }
        http.close();
        reference.close();
    }

    @Test
    void shouldAddWorkersThatAppearInDnsAndDrainThoseThatLeaveWithoutCuttingTheirRequests() throws Exception {
        int port = freePort();
        List<TandemProcess> workers = startWorkers(port,
                new Worker("prefill", "prefill-a", "127.0.0.2", "--kv-serve-delay", String.valueOf(HELD_PULL_MILLIS)),
                new Worker("decode", "decode-a", "127.0.0.3"),
                new Worker("prefill", "prefill-b", "127.0.0.4"),
                new Worker("decode", "decode-b", "127.0.0.5"));
        TandemProcess prefillA = workers.get(0);
        TandemProcess decodeA = workers.get(1);
        TandemProcess prefillB = workers.get(2);
        TandemProcess decodeB = workers.get(3);
        String target = "dns:" + NAME + ":" + port;
        writeHosts("127.0.0.2", "127.0.0.3");
        TandemProcess router = TandemProcess.start(Duration.ofSeconds(60), ROUTER_READY,
                List.of("-Djdk.net.hosts.file=" + hosts.toAbsolutePath()),
                "router", "--model", ReferenceModel.ggufPath().toAbsolutePath().toString(), "--discovery", target,
                "--discovery-interval", "0.5", "--http-port", "0", "--grpc-port", "0");
        processes.add(router);
        // the first round runs before the router serves: both names are in the pools already
        assertThat(router.stderr())
                .contains("discovery: prefill worker at 127.0.0.2:" + port + " joined the pool (" + target + ")")
                .contains("discovery: decode worker at 127.0.0.3:" + port + " joined the pool (" + target + ")")
                .doesNotContain("127.0.0.4:" + port).doesNotContain("127.0.0.5:" + port)
                .contains("1 prefill and 1 decode workers");
        URI completions = URI.create("http://" + router.host() + ":" + router.httpPort() + "/v1/completions");

        // A request on the first two workers, held in its KV pull while they leave DNS.
        ReferenceModel.Case held = reference.get("once_upon_a_time");
        double queriedA = queries(prefillA);
        CompletableFuture<HttpResponse<String>> heldStream = http.sendAsync(post(completions, Map.of("prompt", held.prompt(),
                "max_tokens", held.generatedTokenIds().length, "temperature", 0, "stream", true)),
                HttpResponse.BodyHandlers.ofString());
        EngineGauges.await(http, LocalCluster.metrics(prefillA), Duration.ofSeconds(30), "the held request prefilled",
                g -> g.get(QUERIES, "prefill") > queriedA);
        writeHosts("127.0.0.4", "127.0.0.5");
        awaitLog(router, "discovery: prefill worker prefill-a at 127.0.0.2:" + port + " left " + target);
        awaitLog(router, "discovery: decode worker decode-a at 127.0.0.3:" + port + " left " + target);
        awaitLog(router, "discovery: prefill worker at 127.0.0.4:" + port + " joined the pool (" + target + ")");
        awaitLog(router, "discovery: decode worker at 127.0.0.5:" + port + " joined the pool (" + target + ")");
        assertThat(heldStream).as("the request on the workers that left DNS").isNotDone();
        assertThat(router.stderr()).as("workers closed under a running request")
                .doesNotContain("worker prefill-a left the pool and is closed")
                .doesNotContain("worker decode-a left the pool and is closed");

        HttpResponse<String> drained = heldStream.get(60, TimeUnit.SECONDS);
        assertThat(drained.statusCode()).as(drained.body()).isEqualTo(200);
        assertThat(ServerSentEvents.parse(drained.body(), JSON).text()).isEqualTo(ReferenceContinuations.text(held));
        awaitLog(router, "prefill worker prefill-a left the pool and is closed: no request holds it");
        awaitLog(router, "decode worker decode-a left the pool and is closed: no request holds it");

        // Every later request goes to the workers that joined.
        double queriedAAfter = queries(prefillA);
        double pulledA = pulled(decodeA);
        double queriedB = queries(prefillB);
        double pulledB = pulled(decodeB);
        int promptTokens = 0;
        for (ReferenceModel.Case c : reference.cases) {
            int n = c.generatedTokenIds().length;
            JsonNode completion = JSON.readTree(http.send(post(completions, Map.of("prompt", c.prompt(), "max_tokens", n,
                    "temperature", 0)), HttpResponse.BodyHandlers.ofString()).body());
            assertThat(completion.path("choices").path(0).path("text").asText()).as(c.name())
                    .isEqualTo(ReferenceContinuations.text(c));
            ServerSentEvents events = ServerSentEvents.parse(http.send(post(completions, Map.of("prompt", c.prompt(),
                    "max_tokens", n, "temperature", 0, "stream", true)), HttpResponse.BodyHandlers.ofString()).body(), JSON);
            assertThat(events.text()).as(c.name()).isEqualTo(ReferenceContinuations.text(c));
            promptTokens += 2 * c.promptTokenIds().length;
        }
        assertThat(queries(prefillA)).as("prompt tokens sent to the prefill worker gone from DNS").isEqualTo(queriedAAfter);
        assertThat(pulled(decodeA)).as("KV pages pulled by the decode worker gone from DNS").isEqualTo(pulledA);
        assertThat(queries(prefillB) - queriedB).as("prompt tokens prefilled by the prefill worker that joined")
                .isEqualTo(promptTokens);
        assertThat(pulled(decodeB) - pulledB).as("KV pages pulled by the decode worker that joined").isPositive();
        for (TandemProcess w : workers) {
            String role = w == prefillA || w == prefillB ? "prefill" : "decode";
            EngineGauges.await(http, LocalCluster.metrics(w), Duration.ofSeconds(30), "idle",
                    g -> g.get("tandem:kv_cache_free_blocks", role) == g.get("tandem:kv_cache_total_blocks", role)
                            && g.get("tandem:num_requests_running", role) == 0);
        }
    }

    @Test
    void shouldKeepStaticWorkersBesideDiscoveredOnesAndTakeBackAWorkerThatReturnsToDns() throws Exception {
        int port = freePort();
        List<TandemProcess> workers = startWorkers(port, new Worker("prefill", "prefill-s", "127.0.0.6"),
                new Worker("decode", "decode-d", "127.0.0.7"));
        String target = "dns:" + NAME + ":" + port;
        String decodeJoined = "discovery: decode worker at 127.0.0.7:" + port + " joined the pool (" + target + ")";
        writeHosts("127.0.0.6", "127.0.0.7");
        TandemProcess router = TandemProcess.start(Duration.ofSeconds(60), ROUTER_READY,
                List.of("-Djdk.net.hosts.file=" + hosts.toAbsolutePath()),
                "router", "--model", ReferenceModel.ggufPath().toAbsolutePath().toString(), "--prefill", "127.0.0.6:" + port,
                "--discovery", target, "--discovery-interval", "0.5", "--http-port", "0", "--grpc-port", "0");
        processes.add(router);
        assertThat(router.stderr()).contains(decodeJoined).contains("1 prefill and 1 decode workers")
                .as("the static prefill worker, listed in DNS too, is not discovered again")
                .doesNotContain("prefill worker at 127.0.0.6");
        URI completions = URI.create("http://" + router.host() + ":" + router.httpPort() + "/v1/completions");
        ReferenceModel.Case c = reference.get("lily_park");
        assertReferenceCompletion(completions, c);

        // Both leave DNS (the name now lists an address where no worker serves; a name that does not
        // resolve at all keeps its last endpoints): the discovered decode worker leaves its pool, the
        // static prefill worker stays.
        writeHosts("127.0.0.8");
        awaitLog(router, "discovery: decode worker decode-d at 127.0.0.7:" + port + " left " + target);
        awaitLog(router, "discovery: 127.0.0.8:" + port + " (" + target + ") does not answer as a worker yet");
        HttpResponse<String> refused = http.send(post(completions, Map.of("prompt", c.prompt(), "max_tokens", 4)),
                HttpResponse.BodyHandlers.ofString());
        assertThat(refused.statusCode()).as(refused.body()).isEqualTo(429);
        assertThat(refused.body()).contains("no healthy decode worker");

        writeHosts("127.0.0.7");
        awaitLog(router, decodeJoined, 2);
        double queried = queries(workers.get(0));
        assertReferenceCompletion(completions, c);
        assertThat(queries(workers.get(0)) - queried).as("prompt tokens prefilled by the static worker")
                .isEqualTo(c.promptTokenIds().length);
        assertThat(router.stderr()).doesNotContain("prefill worker prefill-s at").doesNotContain("prefill-s left the pool");
    }

    private void assertReferenceCompletion(URI completions, ReferenceModel.Case c) throws Exception {
        HttpResponse<String> response = http.send(post(completions, Map.of("prompt", c.prompt(), "max_tokens",
                c.generatedTokenIds().length, "temperature", 0)), HttpResponse.BodyHandlers.ofString());
        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        assertThat(JSON.readTree(response.body()).path("choices").path(0).path("text").asText()).as(c.name())
                .isEqualTo(ReferenceContinuations.text(c));
    }

    /** A worker to start: role, id, loopback address, and options of its own. */
    private record Worker(String role, String id, String host, String... options) {}

    /** Starts the workers in parallel, each on its own address at the same gRPC port; they are closed after the test. */
    private List<TandemProcess> startWorkers(int port, Worker... workers) {
        List<CompletableFuture<TandemProcess>> starts = new ArrayList<>();
        try (var threads = Executors.newVirtualThreadPerTaskExecutor()) {
            for (Worker w : workers) {
                List<String> args = new ArrayList<>(List.of(w.role(), "--model", ReferenceModel.ggufPath().toAbsolutePath().toString(),
                        "--threads", "1", "--kv-cache-memory", "64", "--host", w.host(), "--grpc-port", String.valueOf(port),
                        "--metrics-port", "0", "--worker-id", w.id()));
                if (w.role().equals("prefill")) {
                    args.addAll(List.of("--kv-port", "0"));
                }
                args.addAll(List.of(w.options()));
                starts.add(CompletableFuture.supplyAsync(() -> {
                    try {
                        return TandemProcess.start(Duration.ofSeconds(90),
                                w.role().equals("prefill") ? LocalCluster.PREFILL_READY : LocalCluster.DECODE_READY,
                                args.toArray(String[]::new));
                    } catch (Exception e) {
                        throw new CompletionException(e);
                    }
                }, threads));
            }
            List<TandemProcess> started = new ArrayList<>();
            Throwable failure = null;
            for (CompletableFuture<TandemProcess> s : starts) {
                try {
                    started.add(s.join());
                } catch (CompletionException e) {
                    failure = failure == null ? e.getCause() : failure;
                }
            }
            processes.addAll(started);
            if (failure != null) {
                throw new AssertionError("a worker did not start", failure);
            }
            return started;
        }
    }

    /** A port free on every loopback address now (bound on the wildcard, then let go). */
    private static int freePort() throws Exception {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /**
     * Makes {@link #NAME} resolve to {@code addresses} in the router's JVM: one hosts-file line each,
     * written to a temporary file and moved into place, so that a lookup never reads half a file.
     */
    private void writeHosts(String... addresses) throws Exception {
        StringBuilder text = new StringBuilder("127.0.0.1 localhost\n");
        for (String a : addresses) {
            text.append(a).append(' ').append(NAME).append('\n');
        }
        Path next = hosts.resolveSibling("hosts.next");
        Files.writeString(next, text);
        Files.move(next, hosts, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    private double queries(TandemProcess prefill) throws Exception {
        return EngineGauges.scrape(http, LocalCluster.metrics(prefill)).get(QUERIES, "prefill");
    }

    private double pulled(TandemProcess decode) throws Exception {
        return EngineGauges.scrape(http, LocalCluster.metrics(decode)).get(PULLED, "decode");
    }

    /** Waits until the process's stderr holds {@code line}. */
    private static void awaitLog(TandemProcess process, String line) throws InterruptedException {
        awaitLog(process, line, 1);
    }

    /** Waits until the process's stderr holds {@code line} at least {@code times} times. */
    private static void awaitLog(TandemProcess process, String line, int times) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (process.stderr().split(Pattern.quote(line), -1).length - 1 < times) {
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError("no " + times + " × '" + line + "' in:\n" + process.stderr());
            }
            Thread.sleep(20);
        }
    }

    private static HttpRequest post(URI uri, Object body) throws Exception {
        return HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(60)).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(body))).build();
    }
}
