package io.tandem.app;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.tandem.engine.ReferenceModel;
import io.tandem.proto.v1.GenerateRequest;
import io.tandem.proto.v1.GenerationGrpc;
import io.tandem.proto.v1.PrefillRequest;
import io.tandem.proto.v1.PrefillResponse;
import io.tandem.proto.v1.PrefillWorkerGrpc;
import io.tandem.proto.v1.ReleaseRequest;
import io.tandem.proto.v1.ResolvedSamplingParams;
import io.tandem.proto.v1.SamplingParams;
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Routing and admission of {@code tandem router} over real worker processes on loopback (two
 * prefill workers, one decode worker, stories260K, block size 16): {@code kv_aware} sends prompts
 * sharing a long prefix to the prefill worker that holds it and spreads them when that worker is
 * saturated; a killed worker leaves the pool and one restarted on its port rejoins; a full router
 * answers HTTP 429 with {@code Retry-After} and gRPC {@code RESOURCE_EXHAUSTED}, then serves again
 * once the load drains, with every KV block back in the free pool. Where a request went is read
 * from each worker's own {@code /metrics} ({@code tandem:prefix_cache_queries_total},
 * {@code tandem:prefix_cache_hits_total}).
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class RoutingIT {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int BLOCK = 16;
    private static final String QUERIES = "tandem:prefix_cache_queries_total";
    private static final String HITS = "tandem:prefix_cache_hits_total";
    private static HttpClient http;
    private static LocalCluster cluster;
    private static TandemProcess router;

    @BeforeAll
    static void start() {
        http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5)).build();
        cluster = LocalCluster.start(2, 1, "--model", ReferenceModel.ggufPath().toAbsolutePath().toString(),
                "--threads", "1", "--kv-cache-memory", "64");
        router = cluster.startRouter(2, 1, "--routing-policy", "kv_aware");
    }

    @AfterAll
    static void stop() {
        if (cluster != null) {
            cluster.close();
        }
        http.close();
    }

    /** Every test leaves every worker holding no KV block and no request. */
    @AfterEach
    void awaitIdleWorkers() throws Exception {
        for (TandemProcess w : cluster.prefill) {
            awaitIdle(w, "prefill");
        }
        for (TandemProcess w : cluster.decode) {
            awaitIdle(w, "decode");
        }
    }

    @Test
    void shouldSendRequestsSharingALongPrefixToThePrefillWorkerHoldingIt() throws Exception {
        int[] prefix = tokens(10 * BLOCK, 1);
        double[] queries = scrape(QUERIES);
        double[] hits = scrape(HITS);
        try (Client client = new Client(router)) {
            for (int i = 0; i < 6; i++) {
                client.generate(withSuffix(prefix, i), 2);
            }
        }
        double[] queried = minus(scrape(QUERIES), queries);
        double[] hit = minus(scrape(HITS), hits);
        int holder = queried[0] > 0 ? 0 : 1;
        assertThat(queried[1 - holder]).as("prompt tokens prefilled by the other worker").isZero();
        assertThat(queried[holder]).isEqualTo(6 * (prefix.length + 5));
        // the first request computes the prefix; the five others each find its 10 blocks
        assertThat(hit[holder]).isEqualTo(5 * prefix.length);
    }

    @Test
    void shouldSpreadRequestsToTheOtherWorkerWhileTheHolderOfTheirPrefixIsSaturated() throws Exception {
        int[] prefix = tokens(10 * BLOCK, 2);
        try (Client client = new Client(router)) {
            double[] before = scrape(QUERIES);
            client.generate(withSuffix(prefix, 0), 2);
            int holder = minus(scrape(QUERIES), before)[0] > 0 ? 0 : 1;
            int other = 1 - holder;
            TandemProcess busy = cluster.prefill.get(holder);
            PrefillLoad load = new PrefillLoad(busy, 6);
            try (load) {
                awaitGauge(busy, "tandem:num_requests_waiting", 2);
                // the router sees the queue at its next load poll (every 500 ms): then the prefix moves on
                double otherBefore = scrape(QUERIES)[other];
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                int sent = 0;
                while (scrape(QUERIES)[other] == otherBefore) {
                    assertThat(System.nanoTime() - deadline).as("no request reached the idle worker after %d", sent)
                            .isNegative();
                    client.generate(withSuffix(prefix, ++sent), 2);
                }
            }
            assertThat(load.errors).isEmpty();
            assertThat(load.prefilled.get()).as("prompts of the saturating load prefilled").isPositive();
        }
    }

    @Test
    void shouldDropAKilledPrefillWorkerFromThePoolAndTakeItBackWhenRestartedOnItsPort() throws Exception {
        TandemProcess victim = cluster.prefill.get(1);
        String id = LocalCluster.workerId(victim);
        int port = LocalCluster.grpcPort(victim);
        victim.kill();
        awaitLog(router, "worker " + id + " at 127.0.0.1:" + port + " is unhealthy", 1);
        try (Client client = new Client(router)) {
            // short distinct prompts cost the same everywhere: only pool membership keeps them off the dead worker
            for (int i = 0; i < 6; i++) {
                client.generate(tokens(20, 100 + i), 2);
            }
            TandemProcess restarted = TandemProcess.start(Duration.ofSeconds(60), LocalCluster.PREFILL_READY, "prefill",
                    "--model", ReferenceModel.ggufPath().toAbsolutePath().toString(), "--threads", "1",
                    "--kv-cache-memory", "64", "--worker-id", id, "--grpc-port", String.valueOf(port), "--kv-port", "0",
                    "--metrics-port", "0");
            cluster.prefill.set(1, restarted);
            // healthy once at the router's start, once more now
            awaitLog(router, "worker " + id + " at 127.0.0.1:" + port + " is healthy", 2);
            for (int i = 0; i < 6; i++) {
                client.generate(tokens(20, 200 + i), 2);
            }
            assertThat(scrape(QUERIES)[1]).as("prompt tokens prefilled by the restarted worker").isPositive();
        }
    }

    @Test
    void shouldAnswer429AndResourceExhaustedWhenFullThenServeAgainOnceDrained() throws Exception {
        TandemProcess small = cluster.startRouter(2, 1, "--max-in-flight", "2");
        URI completions = URI.create("http://" + small.host() + ":" + small.httpPort() + "/v1/completions");
        List<InputStream> streams = new ArrayList<>();
        try {
            for (int i = 0; i < 2; i++) {
                // long generations, held open: admitted once their first event arrives
                HttpResponse<InputStream> r = http.send(post(completions, Map.of("prompt", "Once upon a time " + i,
                        "max_tokens", 1900, "ignore_eos", true, "stream", true)), HttpResponse.BodyHandlers.ofInputStream());
                assertThat(r.statusCode()).isEqualTo(200);
                streams.add(r.body());
                awaitFirstEvent(r.body());
            }
            HttpResponse<String> refused = http.send(post(completions, Map.of("prompt", "One more", "max_tokens", 4)),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(refused.statusCode()).as(refused.body()).isEqualTo(429);
            assertThat(refused.headers().firstValue("retry-after")).hasValueSatisfying(
                    v -> assertThat(Integer.parseInt(v)).isPositive());
            JsonNode error = JSON.readTree(refused.body()).path("error");
            assertThat(error.path("type").asText()).isEqualTo("overloaded_error");
            assertThat(error.path("message").asText()).contains("2 requests in flight");
            try (Client client = new Client(small)) {
                assertThatThrownBy(() -> client.generate(tokens(20, 7), 2)).isInstanceOfSatisfying(
                        StatusRuntimeException.class, e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.RESOURCE_EXHAUSTED));
            }
        } finally {
            for (InputStream s : streams) {
                s.close(); // the client goes away: the router cancels both generations
            }
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        HttpResponse<String> served;
        do {
            assertThat(System.nanoTime() - deadline).as("still refused after the load drained").isNegative();
            Thread.sleep(50);
            served = http.send(post(completions, Map.of("prompt", "Once upon a time", "max_tokens", 4)),
                    HttpResponse.BodyHandlers.ofString());
        } while (served.statusCode() == 429);
        assertThat(served.statusCode()).as(served.body()).isEqualTo(200);
        assertThat(JSON.readTree(served.body()).path("usage").path("completion_tokens").asInt()).isEqualTo(4);
    }

    /** A public gRPC client of a router. */
    private static final class Client implements AutoCloseable {
        private final ManagedChannel channel;

        Client(TandemProcess router) {
            channel = Grpc.newChannelBuilderForAddress(router.host(), router.grpcPort(), InsecureChannelCredentials.create())
                    .build();
        }

        /** Generates greedily to the end; throws the call's {@link StatusRuntimeException} if it fails. */
        void generate(int[] prompt, int maxTokens) {
            GenerationGrpc.newBlockingStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS)
                    .generate(GenerateRequest.newBuilder().addAllPromptTokenIds(IntStream.of(prompt).boxed().toList())
                            .setSampling(SamplingParams.newBuilder().setMaxTokens(maxTokens)).build())
                    .forEachRemaining(r -> {});
        }

        @Override
        public void close() throws InterruptedException {
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }

    /**
     * Keeps {@code concurrency} long prompts queued on one prefill worker, sent straight to its
     * {@code Prefill} (not through the router), releasing each lease as soon as it is granted.
     */
    private static final class PrefillLoad implements AutoCloseable {
        final AtomicInteger prefilled = new AtomicInteger();
        final List<Throwable> errors = java.util.Collections.synchronizedList(new ArrayList<>());
        private final ManagedChannel channel;
        private final AtomicBoolean running = new AtomicBoolean(true);
        private final List<CompletableFuture<Void>> loops = new ArrayList<>();

        PrefillLoad(TandemProcess worker, int concurrency) {
            channel = Grpc.newChannelBuilderForAddress("127.0.0.1", LocalCluster.grpcPort(worker),
                    InsecureChannelCredentials.create()).build();
            var stub = PrefillWorkerGrpc.newBlockingStub(channel);
            AtomicInteger next = new AtomicInteger();
            for (int c = 0; c < concurrency; c++) {
                loops.add(CompletableFuture.runAsync(() -> {
                    while (running.get()) {
                        int n = next.incrementAndGet();
                        try {
                            PrefillResponse r = stub.withDeadlineAfter(60, TimeUnit.SECONDS).prefill(PrefillRequest.newBuilder()
                                    .setRequestId("load-" + n)
                                    .addAllPromptTokenIds(IntStream.of(loadPrompt(n)).boxed().toList())
                                    .setSampling(ResolvedSamplingParams.newBuilder().setTopP(1).setTopK(-1).setMaxTokens(2))
                                    .build());
                            stub.withDeadlineAfter(10, TimeUnit.SECONDS).release(ReleaseRequest.newBuilder()
                                    .setWorkerId(r.getKvHandle().getWorkerId()).setEpoch(r.getKvHandle().getEpoch())
                                    .setLeaseId(r.getKvHandle().getLeaseId()).build());
                            prefilled.incrementAndGet();
                        } catch (StatusRuntimeException e) {
                            if (e.getStatus().getCode() != Status.Code.RESOURCE_EXHAUSTED) {
                                errors.add(e);
                                return;
                            }
                        }
                    }
                }, java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor()));
            }
        }

        @Override
        public void close() throws Exception {
            running.set(false);
            CompletableFuture.allOf(loops.toArray(CompletableFuture[]::new)).get(60, TimeUnit.SECONDS);
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }

    /** Distinct token ids in [1, 500] (stories260K's vocabulary is 512), a different run per seed. */
    private static int[] tokens(int n, int seed) {
        int[] t = new int[n];
        for (int i = 0; i < n; i++) {
            t[i] = 1 + (i * 31 + seed * 17) % 500;
        }
        return t;
    }

    /**
     * The {@code n}th prompt of a saturating load: 1,500 tokens that share no block with another
     * load prompt or with a test's prompts (its first token, 501 and up, is one {@link #tokens}
     * never makes).
     */
    private static int[] loadPrompt(int n) {
        int[] t = tokens(1500, 300 + n % 150);
        t[0] = 501 + (n / 150) % 11;
        return t;
    }

    /** The prefix and 5 tokens of its own: a partial last block, so a prompt's full blocks are the prefix's. */
    private static int[] withSuffix(int[] prefix, int i) {
        int[] p = java.util.Arrays.copyOf(prefix, prefix.length + 5);
        for (int k = 0; k < 5; k++) {
            p[prefix.length + k] = 1 + (i * 7 + k) % 500;
        }
        return p;
    }

    /** A counter of both prefill workers, by index. */
    private static double[] scrape(String name) throws Exception {
        double[] v = new double[cluster.prefill.size()];
        for (int i = 0; i < v.length; i++) {
            v[i] = EngineGauges.scrape(http, LocalCluster.metrics(cluster.prefill.get(i))).get(name, "prefill");
        }
        return v;
    }

    private static double[] minus(double[] a, double[] b) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            d[i] = a[i] - b[i];
        }
        return d;
    }

    private static void awaitGauge(TandemProcess worker, String name, double atLeast) throws Exception {
        EngineGauges.await(http, LocalCluster.metrics(worker), Duration.ofSeconds(30), name + " >= " + atLeast,
                g -> g.get(name, "prefill") >= atLeast);
    }

    private static void awaitIdle(TandemProcess worker, String role) throws Exception {
        EngineGauges.await(http, LocalCluster.metrics(worker), Duration.ofSeconds(30), "idle",
                g -> g.get("tandem:kv_cache_free_blocks", role) == g.get("tandem:kv_cache_total_blocks", role)
                        && g.get("tandem:num_requests_running", role) == 0 && g.get("tandem:num_requests_waiting", role) == 0);
    }

    /** Waits until the process's stderr holds {@code line} at least {@code times} times. */
    private static void awaitLog(TandemProcess process, String line, int times) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (process.stderr().split(java.util.regex.Pattern.quote(line), -1).length - 1 < times) {
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError("no " + times + " × '" + line + "' in:\n" + process.stderr());
            }
            Thread.sleep(20);
        }
    }

    private static void awaitFirstEvent(InputStream body) throws Exception {
        BufferedReader reader = new BufferedReader(new InputStreamReader(body, StandardCharsets.UTF_8), 1);
        for (String line; (line = reader.readLine()) != null; ) {
            if (line.startsWith("data:")) {
                return;
            }
        }
        throw new AssertionError("the stream ended before its first event");
    }

    private static HttpRequest post(URI uri, Object body) throws Exception {
        return HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(60)).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(body))).build();
    }
}
