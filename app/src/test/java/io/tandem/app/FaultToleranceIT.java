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
import io.tandem.proto.v1.DecodeRequest;
import io.tandem.proto.v1.DecodeWorkerGrpc;
import io.tandem.proto.v1.KvHandle;
import io.tandem.proto.v1.LoadRequest;
import io.tandem.proto.v1.PrefillRequest;
import io.tandem.proto.v1.PrefillResponse;
import io.tandem.proto.v1.PrefillWorkerGrpc;
import io.tandem.proto.v1.ReleaseRequest;
import io.tandem.proto.v1.RenewRequest;
import io.tandem.proto.v1.ResolvedSamplingParams;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code kill -9} of workers of a disaggregated deployment of separate JVMs on loopback
 * (stories260K, one compute thread each), each test with a cluster of its own: a prefill worker
 * killed while it holds leases and while a pull from it is in flight, a decode worker killed while
 * it holds handles, a prefill worker restarted on the same ports. No request may hang: every client
 * call has a deadline, and each assertion on timing bounds the time from the kill.
 *
 * <p>Prefill workers hold each KV pull {@code --kv-serve-delay} before serving it (a test-only
 * throttle), so that a pull is in flight when the kill comes; decode workers run one sequence at a
 * time ({@code --max-num-seqs 1}), so that later requests wait in the decode queue, holding leases
 * whose pages were not fetched yet.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class FaultToleranceIT {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Duration SLACK = Duration.ofSeconds(3);
    private static ReferenceContinuations reference;
    private static HttpClient http;

    @BeforeAll
    static void start() throws Exception {
        reference = new ReferenceContinuations();
        http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5)).build();
    }

    @AfterAll
    static void stop() {
        http.close();
        reference.close();
    }

    static String[] commonArgs() {
        return new String[] {"--model", ReferenceModel.ggufPath().toAbsolutePath().toString(), "--threads", "1",
                "--kv-cache-memory", "64"};
    }

    /**
     * Two prefill workers, one decode worker; requests R1…R4 alternate between prefill-0 and
     * prefill-1 (round robin) and reach the decode worker in that order. When prefill-0 is killed,
     * the pull of R1 (from prefill-0) is in flight, R2 (prefill-1) and R3 (prefill-0) wait in the
     * decode queue, R3's lease not fetched. R1 and R3 lose their KV: with {@code fail} they end
     * with an error naming the failed hand-off, with {@code recompute} they complete with the
     * reference continuation. Later requests all go to prefill-1.
     */
    @ParameterizedTest(name = "--kv-load-failure-policy {0}")
    @ValueSource(strings = {"fail", "recompute"})
    void shouldEndOrRecomputeTheRequestsWhoseKvWasOnAKilledPrefillWorker(String policy) throws Exception {
        long serveDelayMillis = 4000;
        Duration transferTimeout = Duration.ofSeconds(6);
        try (LocalCluster cluster = LocalCluster.start(2, 1, commonArgs(),
                new String[] {"--lease-timeout", "10", "--kv-serve-delay", String.valueOf(serveDelayMillis)},
                new String[] {"--kv-transfer-timeout", String.valueOf(transferTimeout.toSeconds()), "--max-num-seqs", "1",
                        "--kv-load-failure-policy", policy})) {
            TandemProcess router = cluster.startRouter(2, 1, "--routing", "round_robin");
            URI base = URI.create("http://" + router.host() + ":" + router.httpPort());
            URI victim = LocalCluster.metrics(cluster.prefill.get(0));
            URI survivor = LocalCluster.metrics(cluster.prefill.get(1));
            URI decode = LocalCluster.metrics(cluster.decode.getFirst());

            List<ReferenceModel.Case> cases = new ArrayList<>();
            List<CompletableFuture<HttpResponse<String>>> responses = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                ReferenceModel.Case c = reference.cases.get(1 + i % 2);
                cases.add(c);
                responses.add(complete(http, base, c));
                int onEach = i / 2 + 1;
                URI prefill = i % 2 == 0 ? victim : survivor;
                int accepted = i + 1;
                // in order: each exported by its prefill worker and accepted by the decode worker before the next
                MetricSamples.await(http, prefill, Duration.ofSeconds(10), "R" + accepted + " exported",
                        m -> m.value("tandem:kv_leases_granted_total") == onEach);
                MetricSamples.await(http, decode, Duration.ofSeconds(10), "R" + accepted + " accepted",
                        m -> m.value("tandem:num_requests_waiting") == accepted);
            }
            assertThat(MetricSamples.scrape(http, victim).value("tandem:kv_leases_active"))
                    .as("R1 (pull in flight) and R3 (queued) hold leases on prefill-0").isEqualTo(2);
            assertThat(MetricSamples.scrape(http, decode).value("tandem:kv_transfer_pages_total", "role=\"decode\""))
                    .as("no pull completed before the kill").isZero();

            long killed = System.nanoTime();
            cluster.prefill.get(0).kill();

            HttpResponse<String> r1 = responses.get(0).get(transferTimeout.plus(SLACK).toMillis(), TimeUnit.MILLISECONDS);
            Duration r1After = Duration.ofNanos(System.nanoTime() - killed);
            for (int i = 0; i < 4; i++) {
                // R3 waits for R2's pull (the serve delay) and its decode before its own pull fails at once
                HttpResponse<String> r = responses.get(i).get(serveDelayMillis + transferTimeout.plus(SLACK).toMillis() * 2,
                        TimeUnit.MILLISECONDS);
                boolean lost = i % 2 == 0;
                if (lost && policy.equals("fail")) {
                    assertThat(r.statusCode()).as("R%d: %s", i + 1, r.body()).isEqualTo(500);
                    assertThat(JSON.readTree(r.body()).path("error").path("message").asText()).as("R%d", i + 1)
                            .contains("KV hand-off failed").contains("CONNECTION_LOST").contains("prefill-0");
                } else {
                    assertCompletion(r, cases.get(i), "R" + (i + 1));
                }
            }
            assertThat(r1After).as("R1 ends within the transfer timeout of the kill").isLessThan(transferTimeout.plus(SLACK));
            MetricSamples decodeMetrics = MetricSamples.scrape(http, decode);
            assertThat(decodeMetrics.value("tandem:kv_transfer_failures_total", "reason=\"connection_lost\""))
                    .as("R1's pull cut, R3's refused").isEqualTo(2);
            assertThat(decodeMetrics.value("tandem:kv_load_recomputes_total"))
                    .isEqualTo(policy.equals("recompute") ? 2 : 0);

            awaitRouterLog(router, "worker prefill-0 at", "is unhealthy");
            for (int i = 0; i < 2; i++) {
                ReferenceModel.Case c = reference.cases.get(1 + i);
                assertCompletion(complete(http, base, c).get(60, TimeUnit.SECONDS), c, "after the kill #" + (i + 1));
            }
            MetricSamples survivorMetrics = MetricSamples.await(http, survivor, Duration.ofSeconds(10), "idle",
                    m -> m.value("tandem:kv_leases_active") == 0);
            assertThat(survivorMetrics.value("tandem:kv_leases_granted_total")).as("R2, R4 and both later requests")
                    .isEqualTo(4);
            assertThat(survivorMetrics.value("tandem:kv_cache_free_blocks"))
                    .isEqualTo(survivorMetrics.value("tandem:kv_cache_total_blocks"));
            MetricSamples.await(http, decode, Duration.ofSeconds(10), "decode idle",
                    m -> m.value("tandem:kv_cache_free_blocks") == m.value("tandem:kv_cache_total_blocks")
                            && m.value("tandem:num_requests_waiting") == 0 && m.value("tandem:num_requests_running") == 0);
        }
    }

    /**
     * A decode worker killed while it holds two handles whose pulls wait at the prefill worker: both
     * clients get an error at once, and the prefill worker keeps the blocks until the leases expire
     * (nobody releases them), then frees every one.
     */
    @Test
    void shouldErrorTheClientsOfAKilledDecodeWorkerAndFreeTheirKvWhenTheLeasesExpire() throws Exception {
        Duration leaseTimeout = Duration.ofSeconds(4);
        long serveDelayMillis = 2000;
        try (LocalCluster cluster = LocalCluster.start(1, 1, commonArgs(),
                new String[] {"--lease-timeout", String.valueOf(leaseTimeout.toSeconds()), "--kv-serve-delay",
                        String.valueOf(serveDelayMillis)},
                new String[] {"--kv-transfer-timeout", "3"})) {
            TandemProcess router = cluster.startRouter(1, 1);
            URI base = URI.create("http://" + router.host() + ":" + router.httpPort());
            URI prefill = LocalCluster.metrics(cluster.prefill.getFirst());
            URI decode = LocalCluster.metrics(cluster.decode.getFirst());

            long sent = System.nanoTime();
            List<CompletableFuture<HttpResponse<String>>> responses = List.of(complete(http, base, reference.cases.get(1)),
                    complete(http, base, reference.cases.get(2)));
            MetricSamples.await(http, prefill, Duration.ofSeconds(10), "both exported",
                    m -> m.value("tandem:kv_leases_active") == 2);
            MetricSamples.await(http, decode, Duration.ofSeconds(10), "both accepted",
                    m -> m.value("tandem:num_requests_waiting") == 2);

            long killed = System.nanoTime();
            cluster.decode.getFirst().kill();

            for (CompletableFuture<HttpResponse<String>> response : responses) {
                HttpResponse<String> r = response.get(SLACK.toMillis(), TimeUnit.MILLISECONDS);
                assertThat(Duration.ofNanos(System.nanoTime() - killed)).isLessThan(SLACK);
                assertThat(r.statusCode()).as(r.body()).isEqualTo(500);
                assertThat(r.body()).contains("decode-0").contains("UNAVAILABLE");
            }
            MetricSamples held = MetricSamples.scrape(http, prefill);
            assertThat(held.value("tandem:kv_leases_active")).as("kept until the leases expire").isEqualTo(2);
            assertThat(held.value("tandem:kv_cache_free_blocks")).isLessThan(held.value("tandem:kv_cache_total_blocks"));

            // A pull validated at the prefill worker pushes its lease's deadline by a lease timeout.
            Duration expiryBound = leaseTimeout.plusMillis(serveDelayMillis).plus(SLACK);
            MetricSamples freed = MetricSamples.await(http, prefill, expiryBound, "KV freed",
                    m -> m.value("tandem:kv_leases_active") == 0
                            && m.value("tandem:kv_cache_free_blocks") == m.value("tandem:kv_cache_total_blocks"));
            assertThat(Duration.ofNanos(System.nanoTime() - sent)).as("freed at expiry, not at the disconnect")
                    .isGreaterThan(leaseTimeout);
            assertThat(freed.value("tandem:kv_leases_expired_total")).isEqualTo(2);
            assertThat(freed.value("tandem:kv_leases_released_total")).isZero();
            assertThat(freed.value("tandem:kv_leases_granted_total")).isEqualTo(2);
        }
    }

    /**
     * A prefill worker killed and started again on the same ports comes back with a new epoch: a
     * handle it granted before is refused by the gRPC lease calls ({@code FAILED_PRECONDITION}
     * naming the stale epoch) and by its data plane (a decode worker pulling it ends the request
     * with {@code STALE_EPOCH}, within the transfer timeout); the router finds it healthy again and
     * sends it requests.
     */
    @Test
    void shouldUseARestartedPrefillWorkerAgainAndRefuseHandlesOfItsEarlierEpoch() throws Exception {
        Duration transferTimeout = Duration.ofSeconds(2);
        try (LocalCluster cluster = LocalCluster.start(1, 1, commonArgs(), new String[] {"--lease-timeout", "5"},
                new String[] {"--kv-transfer-timeout", String.valueOf(transferTimeout.toSeconds())})) {
            TandemProcess router = cluster.startRouter(1, 1);
            URI base = URI.create("http://" + router.host() + ":" + router.httpPort());
            ReferenceModel.Case c = reference.get("once_upon_a_time");
            int n = c.generatedTokenIds().length;
            ResolvedSamplingParams greedy = ResolvedSamplingParams.newBuilder().setTemperature(0).setTopP(1).setTopK(-1)
                    .setMaxTokens(n).build();

            PrefillResponse before = withChannel(cluster.prefill.getFirst(), ch -> PrefillWorkerGrpc.newBlockingStub(ch)
                    .withDeadlineAfter(30, TimeUnit.SECONDS).prefill(PrefillRequest.newBuilder().setRequestId("stale")
                            .addAllPromptTokenIds(boxed(c.promptTokenIds())).setSampling(greedy).build()));
            KvHandle stale = before.getKvHandle();

            int grpcPort = LocalCluster.grpcPort(cluster.prefill.getFirst());
            cluster.prefill.getFirst().kill();
            awaitRouterLog(router, "worker prefill-0 at", "is unhealthy");
            TandemProcess restarted = cluster.restartPrefill(0);
            assertThat(LocalCluster.grpcPort(restarted)).as("same gRPC port").isEqualTo(grpcPort);
            assertThat(restarted.readyLine().group(4) + ":" + restarted.readyLine().group(5)).as("same KV port")
                    .isEqualTo(stale.getKvAddress());
            long epoch = withChannel(restarted, ch -> PrefillWorkerGrpc.newBlockingStub(ch).withDeadlineAfter(10, TimeUnit.SECONDS)
                    .getLoad(LoadRequest.getDefaultInstance())).getEpoch();
            assertThat(epoch).as("a new epoch").isNotEqualTo(stale.getEpoch());

            for (String call : List.of("Renew", "Release")) {
                assertThatThrownBy(() -> withChannel(restarted, ch -> {
                    var stub = PrefillWorkerGrpc.newBlockingStub(ch).withDeadlineAfter(10, TimeUnit.SECONDS);
                    return call.equals("Renew")
                            ? stub.renew(RenewRequest.newBuilder().setWorkerId(stale.getWorkerId()).setEpoch(stale.getEpoch())
                                    .setLeaseId(stale.getLeaseId()).build())
                            : stub.release(ReleaseRequest.newBuilder().setWorkerId(stale.getWorkerId())
                                    .setEpoch(stale.getEpoch()).setLeaseId(stale.getLeaseId()).build());
                })).as(call).isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.FAILED_PRECONDITION);
                    assertThat(e.getStatus().getDescription()).contains("stale epoch " + stale.getEpoch())
                            .contains("epoch " + epoch);
                });
            }

            long pulled = System.nanoTime();
            assertThatThrownBy(() -> withChannel(cluster.decode.getFirst(), ch -> {
                DecodeWorkerGrpc.newBlockingStub(ch).withDeadlineAfter(30, TimeUnit.SECONDS)
                        .decode(DecodeRequest.newBuilder().setRequestId("stale").addAllPromptTokenIds(boxed(c.promptTokenIds()))
                                .setFirstToken(before.getFirstToken()).setKvHandle(stale).setSampling(greedy).build())
                        .forEachRemaining(r -> { });
                return null;
            })).isInstanceOfSatisfying(StatusRuntimeException.class, e -> assertThat(e.getStatus().getDescription())
                    .contains("KV hand-off failed").contains("STALE_EPOCH"));
            assertThat(Duration.ofNanos(System.nanoTime() - pulled)).isLessThan(transferTimeout.plus(SLACK));
            assertThat(MetricSamples.scrape(http, LocalCluster.metrics(cluster.decode.getFirst()))
                    .value("tandem:kv_transfer_failures_total", "reason=\"stale_epoch\"")).isEqualTo(1);

            awaitRouterLog(router, "restarted (epoch " + stale.getEpoch() + " → " + epoch + ")", "");
            assertCompletion(complete(http, base, c).get(60, TimeUnit.SECONDS), c, "through the restarted worker");
            MetricSamples after = MetricSamples.await(http, LocalCluster.metrics(restarted), Duration.ofSeconds(10),
                    "released", m -> m.value("tandem:kv_leases_released_total") == 1);
            assertThat(after.value("tandem:kv_leases_granted_total")).isEqualTo(1);
            assertThat(after.value("tandem:kv_leases_active")).isZero();
        }
    }

    /**
     * A prefill worker that hangs ({@code kill -STOP}: its sockets stay open, nothing answers)
     * while a pull from it waits: the pull times out after {@code --kv-transfer-timeout} and the
     * request ends with an error saying so, rather than waiting for the worker.
     */
    @Test
    void shouldEndAPullFromAHungPrefillWorkerWithinTheTransferTimeout() throws Exception {
        Duration transferTimeout = Duration.ofSeconds(2);
        try (LocalCluster cluster = LocalCluster.start(1, 1, commonArgs(),
                new String[] {"--lease-timeout", "5", "--kv-serve-delay", "1500"},
                new String[] {"--kv-transfer-timeout", String.valueOf(transferTimeout.toSeconds())})) {
            TandemProcess router = cluster.startRouter(1, 1);
            URI base = URI.create("http://" + router.host() + ":" + router.httpPort());
            URI decode = LocalCluster.metrics(cluster.decode.getFirst());
            TandemProcess prefill = cluster.prefill.getFirst();

            CompletableFuture<HttpResponse<String>> response = complete(http, base, reference.cases.get(1));
            MetricSamples.await(http, LocalCluster.metrics(prefill), Duration.ofSeconds(10), "exported",
                    m -> m.value("tandem:kv_leases_active") == 1);
            MetricSamples.await(http, decode, Duration.ofSeconds(10), "pulling",
                    m -> m.value("tandem:num_requests_waiting") == 1);
            long stopped = System.nanoTime();
            signal(prefill, "STOP");
            try {
                HttpResponse<String> r = response.get(transferTimeout.plus(SLACK).toMillis(), TimeUnit.MILLISECONDS);
                assertThat(Duration.ofNanos(System.nanoTime() - stopped)).isLessThan(transferTimeout.plus(SLACK));
                assertThat(r.statusCode()).as(r.body()).isEqualTo(500);
                assertThat(r.body()).contains("KV hand-off failed").contains("timed out after 2000 ms");
                assertThat(MetricSamples.scrape(http, decode).value("tandem:kv_transfer_failures_total",
                        "reason=\"timeout\"")).isEqualTo(1);
                MetricSamples.await(http, decode, Duration.ofSeconds(10), "decode idle",
                        m -> m.value("tandem:kv_cache_free_blocks") == m.value("tandem:kv_cache_total_blocks")
                                && m.value("tandem:num_requests_waiting") == 0);
            } finally {
                signal(prefill, "CONT");
            }
        }
    }

    /** {@code kill -SIGNAL pid}. */
    private static void signal(TandemProcess process, String signal) throws Exception {
        Process kill = new ProcessBuilder("kill", "-" + signal, String.valueOf(process.pid())).inheritIO().start();
        assertThat(kill.waitFor(10, TimeUnit.SECONDS)).isTrue();
        assertThat(kill.exitValue()).as("kill -%s %d", signal, process.pid()).isZero();
    }

    private interface ChannelCall<T> {
        T call(ManagedChannel channel) throws Exception;
    }

    /** Runs {@code call} on a channel to the worker's gRPC port. */
    static <T> T withChannel(TandemProcess worker, ChannelCall<T> call) throws Exception {
        ManagedChannel channel = Grpc.newChannelBuilderForAddress("127.0.0.1", LocalCluster.grpcPort(worker),
                InsecureChannelCredentials.create()).build();
        try {
            return call.call(channel);
        } finally {
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }

    /** Waits until the router's log has a line containing both parts (LoadMonitor logs health changes). */
    static void awaitRouterLog(TandemProcess router, String part, String otherPart) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(15).toNanos();
        while (router.stderr().lines().noneMatch(l -> l.contains(part) && l.contains(otherPart))) {
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError("the router never logged '" + part + "…" + otherPart + "'; stderr:\n" + router.stderr());
            }
            Thread.sleep(50);
        }
    }

    /** A non-streaming greedy completion of the case's prompt, as many tokens as the reference has. */
    static CompletableFuture<HttpResponse<String>> complete(HttpClient http, URI base, ReferenceModel.Case c) throws Exception {
        return http.sendAsync(HttpRequest.newBuilder(base.resolve("/v1/completions"))
                .timeout(Duration.ofSeconds(60))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(
                        Map.of("prompt", c.prompt(), "max_tokens", c.generatedTokenIds().length, "temperature", 0))))
                .build(), HttpResponse.BodyHandlers.ofString());
    }

    static void assertCompletion(HttpResponse<String> r, ReferenceModel.Case c, String what) throws Exception {
        assertThat(r.statusCode()).as("%s: %s", what, r.body()).isEqualTo(200);
        JsonNode completion = JSON.readTree(r.body());
        assertThat(completion.path("choices").path(0).path("text").asText()).as("%s (%s)", what, c.name())
                .isEqualTo(ReferenceContinuations.text(c));
    }

    static List<Integer> boxed(int[] ids) {
        return Arrays.stream(ids).boxed().toList();
    }
}
