package io.tandem.app;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.tandem.engine.ReferenceModel;
import io.tandem.proto.v1.DecodeWorkerGrpc;
import io.tandem.proto.v1.GenerateRequest;
import io.tandem.proto.v1.GenerateResponse;
import io.tandem.proto.v1.GenerationGrpc;
import io.tandem.proto.v1.PrefillWorkerGrpc;
import io.tandem.proto.v1.SamplingParams;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The disaggregated deployment as separate JVMs on loopback ({@code tandem prefill}, {@code tandem
 * decode}, {@code tandem router}; stories260K), KV pages moving between processes on the Netty data
 * plane. Two prefill and two decode workers are started once for the class; one router fronts
 * prefill-0 and decode-0 (1P1D), another all four (2P2D), both with the default KV transfer mode
 * (overlap: decode starts on the prefill's early handle); a third fronts 1P1D with
 * {@code --kv-transfer-mode after_prefill}.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class MultiProcessIT {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static ReferenceContinuations reference;
    private static HttpClient http;
    private static LocalCluster cluster;
    /** Routers by pool shape: {@code "1P1D"}, {@code "2P2D"}; {@code "1P1D after_prefill"}. */
    private static Map<String, TandemProcess> routers;

    @BeforeAll
    static void start() throws Exception {
        reference = new ReferenceContinuations();
        http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5)).build();
        cluster = LocalCluster.start(2, 2, commonArgs());
        List<TandemProcess> started = cluster.startRouters(new int[] {1, 1}, new int[] {2, 2});
        routers = Map.of("1P1D", started.get(0), "2P2D", started.get(1),
                "1P1D after_prefill", cluster.startRouter(1, 1, "--kv-transfer-mode", "after_prefill"));
    }

    @AfterAll
    static void stop() {
        if (cluster != null) {
            cluster.close();
        }
        http.close();
        reference.close();
    }

    private static String[] commonArgs() {
        // 8 prompt tokens a step: most reference prompts take several prefill steps, so with the
        // transfer overlapping the prefill the decode worker pulls pages while later chunks compute.
        return new String[] {"--model", ReferenceModel.ggufPath().toAbsolutePath().toString(), "--threads", "1",
                "--kv-cache-memory", "64", "--max-num-batched-tokens", "8"};
    }

    @Test
    void shouldStartEveryRoleServingHealthAndMetricsAndRouteToTheWorkers() throws Exception {
        for (TandemProcess router : routers.values()) {
            URI base = URI.create("http://" + router.host() + ":" + router.httpPort());
            assertThat(get(base.resolve("/health")).statusCode()).isEqualTo(200);
            JsonNode models = JSON.readTree(get(base.resolve("/v1/models")).body());
            assertThat(models.path("data").path(0).path("id").asText()).isEqualTo("stories260K");
            assertThat(router.stderr()).doesNotContain("does not answer");
        }
        for (TandemProcess prefill : cluster.prefill) {
            assertWorker(prefill, PrefillWorkerGrpc.SERVICE_NAME, "prefill");
        }
        for (TandemProcess decode : cluster.decode) {
            assertWorker(decode, DecodeWorkerGrpc.SERVICE_NAME, "decode");
        }
        assertThat(LocalCluster.workerId(cluster.prefill.getFirst())).isEqualTo("prefill-0");
        assertThat(cluster.prefill.getFirst().readyLine().group(5)).as("the bound KV port advertised").isNotEqualTo("0");
    }

    private static void assertWorker(TandemProcess worker, String service, String role) throws Exception {
        ManagedChannel channel = Grpc.newChannelBuilderForAddress("127.0.0.1", LocalCluster.grpcPort(worker),
                InsecureChannelCredentials.create()).build();
        try {
            assertThat(HealthGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
                    .check(HealthCheckRequest.newBuilder().setService(service).build()).getStatus()).isEqualTo(ServingStatus.SERVING);
        } finally {
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
        EngineGauges gauges = EngineGauges.scrape(http, LocalCluster.metrics(worker));
        assertThat(gauges.get("tandem:kv_cache_free_blocks", role)).isEqualTo(gauges.get("tandem:kv_cache_total_blocks", role))
                .isPositive();
        assertThat(gauges.get("tandem:num_requests_running", role)).isZero();
    }

    @ParameterizedTest(name = "{0} prefill + {1} decode, KV transfer {2}")
    @CsvSource({"1, 1, overlap", "2, 2, overlap", "1, 1, after_prefill"})
    void shouldGenerateTheReferenceContinuationsThroughBothPublicApis(int numPrefill, int numDecode, String transferMode)
            throws Exception {
        String shape = numPrefill + "P" + numDecode + "D";
        TandemProcess router = routers.get(transferMode.equals("overlap") ? shape : shape + " " + transferMode);
        URI base = URI.create("http://" + router.host() + ":" + router.httpPort());
        ManagedChannel channel = Grpc.newChannelBuilderForAddress(router.host(), router.grpcPort(),
                InsecureChannelCredentials.create()).build();
        List<TandemProcess> decodeWorkers = cluster.decode.subList(0, numDecode);
        double summariesBefore = pageSummariesReceived(decodeWorkers);
        int decoded = 0;
        try {
            // twice round the pools, so that every prefill and every decode worker serves each case
            for (int round = 0; round < 2 * Math.max(numPrefill, numDecode); round++) {
                for (ReferenceModel.Case c : reference.cases) {
                    int n = c.generatedTokenIds().length;
                    JsonNode completion = JSON.readTree(post(base.resolve("/v1/completions"),
                            Map.of("prompt", c.prompt(), "max_tokens", n, "temperature", 0)).body());
                    assertThat(completion.path("choices").path(0).path("text").asText()).as(c.name())
                            .isEqualTo(ReferenceContinuations.text(c));
                    ServerSentEvents events = ServerSentEvents.parse(post(base.resolve("/v1/completions"),
                            Map.of("prompt", c.prompt(), "max_tokens", n, "temperature", 0, "stream", true)).body(), JSON);
                    assertThat(events.text()).as(c.name()).isEqualTo(ReferenceContinuations.text(c));
                    // token ids in, token ids out: the empty prompt text of bos_only is "no prompt" in proto3
                    StringBuilder text = new StringBuilder();
                    List<Integer> tokens = new ArrayList<>();
                    GenerationGrpc.newBlockingStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS)
                            .generate(GenerateRequest.newBuilder().addAllPromptTokenIds(boxed(c.promptTokenIds()))
                                    .setSampling(SamplingParams.newBuilder().setMaxTokens(n)).build())
                            .forEachRemaining((GenerateResponse r) -> {
                                tokens.addAll(r.getTokenIdsList());
                                text.append(r.getText());
                            });
                    assertThat(tokens).as(c.name()).containsExactlyElementsOf(boxed(c.generatedTokenIds()));
                    assertThat(text.toString()).as(c.name()).isEqualTo(ReferenceContinuations.text(c));
                    // overlap hands every request to a decode worker; after_prefill those the first token does not end
                    decoded += transferMode.equals("overlap") || n > 1 ? 3 : 0;
                }
            }
        } finally {
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
        // Every sequence a decode worker took came with its prompt's page summaries: in the handle
        // (after_prefill) or, on an early handle, with the first token (overlap).
        assertThat(pageSummariesReceived(decodeWorkers) - summariesBefore).as("sequences decoded with page summaries")
                .isEqualTo(decoded);
        for (TandemProcess prefill : cluster.prefill.subList(0, numPrefill)) {
            assertThat(EngineGauges.scrape(http, LocalCluster.metrics(prefill)).get("tandem:prefix_cache_queries_total", "prefill"))
                    .as("prompt tokens prefilled by %s", LocalCluster.workerId(prefill)).isPositive();
        }
        awaitIdleWorkers();
    }

    /**
     * A client that gives up while a long prompt is prefilled in 8-token chunks (the decode worker
     * already pulling it on the early handle) or decoded: wherever its deadline lands, both workers
     * end up holding no KV block and no request.
     */
    @Test
    void shouldFreeKvOnBothSidesWhenTheClientGivesUpDuringAnOverlappedPrefill() throws Exception {
        TandemProcess router = routers.get("1P1D");
        ReferenceModel.Case story = reference.cases.getFirst();
        int[] prompt = new int[480];
        prompt[0] = story.promptTokenIds()[0];
        for (int i = 1; i < prompt.length; i++) {
            prompt[i] = story.generatedTokenIds()[i % story.generatedTokenIds().length];
        }
        ManagedChannel channel = Grpc.newChannelBuilderForAddress(router.host(), router.grpcPort(),
                InsecureChannelCredentials.create()).build();
        try {
            for (long deadlineMillis : new long[] {20, 60, 150}) {
                try {
                    GenerationGrpc.newBlockingStub(channel).withDeadlineAfter(deadlineMillis, TimeUnit.MILLISECONDS)
                            .generate(GenerateRequest.newBuilder().addAllPromptTokenIds(boxed(prompt))
                                    .setSampling(SamplingParams.newBuilder().setMaxTokens(30).setIgnoreEos(true)).build())
                            .forEachRemaining(r -> {});
                } catch (io.grpc.StatusRuntimeException e) {
                    assertThat(e.getStatus().getCode()).isEqualTo(io.grpc.Status.Code.DEADLINE_EXCEEDED);
                }
                awaitIdleWorkers();
            }
        } finally {
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"router", "prefill", "decode"})
    void shouldPrintUsageForHelpOfEachRole(String command) throws Exception {
        TandemProcess.Result result = TandemProcess.run(Duration.ofSeconds(20), command, "--help");

        assertThat(result.exitCode()).as(result.output()).isZero();
        List<String> options = switch (command) {
            case "router" -> List.of("--model", "--prefill", "--decode", "--routing-policy", "--overlap-weight", "--http-port",
                    "--grpc-port", "--max-in-flight", "--kv-transfer-mode");
            case "prefill" -> List.of("--model", "--host", "--grpc-port", "--kv-port", "--metrics-port", "--worker-id",
                    "--lease-timeout", "--kv-page-summaries");
            case "decode" -> List.of("--model", "--host", "--grpc-port", "--metrics-port", "--worker-id",
                    "--kv-transfer-timeout", "--kv-max-in-flight-bytes", "--kv-load-failure-policy");
            default -> throw new IllegalArgumentException(command);
        };
        assertThat(result.output()).contains("Usage: tandem " + command).contains(options);
    }

    private static double pageSummariesReceived(List<TandemProcess> decodeWorkers) throws Exception {
        double sum = 0;
        for (TandemProcess decode : decodeWorkers) {
            sum += MetricSamples.scrape(http, LocalCluster.metrics(decode)).value("tandem:kv_page_summaries_received_total");
        }
        return sum;
    }

    /** Every worker holds no KV block and no request (leases released, sequences ended). */
    private static void awaitIdleWorkers() throws Exception {
        for (TandemProcess w : cluster.prefill) {
            EngineGauges.await(http, LocalCluster.metrics(w), Duration.ofSeconds(10), "idle", g -> idle(g, "prefill"));
        }
        for (TandemProcess w : cluster.decode) {
            EngineGauges.await(http, LocalCluster.metrics(w), Duration.ofSeconds(10), "idle", g -> idle(g, "decode"));
        }
    }

    private static boolean idle(EngineGauges g, String role) {
        return g.get("tandem:kv_cache_free_blocks", role) == g.get("tandem:kv_cache_total_blocks", role)
                && g.get("tandem:num_requests_running", role) == 0 && g.get("tandem:num_requests_waiting", role) == 0;
    }

    private static List<Integer> boxed(int[] ids) {
        return Arrays.stream(ids).boxed().toList();
    }

    private static HttpResponse<String> get(URI uri) throws Exception {
        return http.send(HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(20)).build(), HttpResponse.BodyHandlers.ofString());
    }

    private static HttpResponse<String> post(URI uri, Object body) throws Exception {
        HttpResponse<String> response = http.send(HttpRequest.newBuilder(uri)
                .timeout(Duration.ofSeconds(60))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(body)))
                .build(), HttpResponse.BodyHandlers.ofString());
        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        return response;
    }
}
