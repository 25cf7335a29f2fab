package io.tandem.app;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

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
 * decode}, {@code tandem router}; stories260K). Start-up, health, metrics and shutdown run now; the
 * generation tests need the Netty KV data plane (a decode process must pull pages from a prefill
 * process) and are skipped while {@code io.tandem.kvcache.transfer.NettyKvTransport} is not in the
 * build.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class MultiProcessIT {
    private static final String NETTY_KV_TRANSPORT = "io.tandem.kvcache.transfer.NettyKvTransport";
    private static final ObjectMapper JSON = new ObjectMapper();
    private static ReferenceContinuations reference;
    private static HttpClient http;

    @BeforeAll
    static void clients() throws Exception {
        reference = new ReferenceContinuations();
        http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5)).build();
    }

    @AfterAll
    static void closeClients() {
        http.close();
        reference.close();
    }

    private static String[] commonArgs() {
        return new String[] {"--model", ReferenceModel.ggufPath().toAbsolutePath().toString(), "--threads", "1",
                "--kv-cache-memory", "64"};
    }

    private static boolean hasKvDataPlane() {
        try {
            Class.forName(NETTY_KV_TRANSPORT);
            return true;
        } catch (ClassNotFoundException e) {
            return false;
        }
    }

    @Test
    void shouldStartEveryRoleServingHealthAndMetricsAndRouteToTheWorkers() throws Exception {
        try (LocalCluster cluster = LocalCluster.start(1, 1, commonArgs())) {
            TandemProcess router = cluster.router;
            URI base = URI.create("http://" + router.host() + ":" + router.httpPort());
            assertThat(get(base.resolve("/health")).statusCode()).isEqualTo(200);
            JsonNode models = JSON.readTree(get(base.resolve("/v1/models")).body());
            assertThat(models.path("data").path(0).path("id").asText()).isEqualTo("stories260K");
            assertThat(router.stderr()).doesNotContain("does not answer");

            assertWorker(cluster.prefill.getFirst(), PrefillWorkerGrpc.SERVICE_NAME, "prefill");
            assertWorker(cluster.decode.getFirst(), DecodeWorkerGrpc.SERVICE_NAME, "decode");
            assertThat(LocalCluster.workerId(cluster.prefill.getFirst())).isEqualTo("prefill-0");
        }
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

    @ParameterizedTest(name = "{0} prefill + {1} decode")
    @CsvSource({"1, 1", "2, 2"})
    void shouldGenerateTheReferenceContinuationsThroughBothPublicApis(int numPrefill, int numDecode) throws Exception {
        assumeTrue(hasKvDataPlane(), "the Netty KV data plane (" + NETTY_KV_TRANSPORT + ") is not in this build; "
                + "a decode process cannot pull KV from a prefill process without it");
        try (LocalCluster cluster = LocalCluster.start(numPrefill, numDecode, commonArgs())) {
            TandemProcess router = cluster.router;
            URI base = URI.create("http://" + router.host() + ":" + router.httpPort());
            ManagedChannel channel = Grpc.newChannelBuilderForAddress(router.host(), router.grpcPort(),
                    InsecureChannelCredentials.create()).build();
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
                        StringBuilder text = new StringBuilder();
                        GenerationGrpc.newBlockingStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS)
                                .generate(GenerateRequest.newBuilder().setPrompt(c.prompt())
                                        .setSampling(SamplingParams.newBuilder().setMaxTokens(n)).build())
                                .forEachRemaining((GenerateResponse r) -> text.append(r.getText()));
                        assertThat(text.toString()).as(c.name()).isEqualTo(ReferenceContinuations.text(c));
                    }
                }
            } finally {
                channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
            }
            awaitIdleWorkers(cluster);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"router", "prefill", "decode"})
    void shouldPrintUsageForHelpOfEachRole(String command) throws Exception {
        TandemProcess.Result result = TandemProcess.run(Duration.ofSeconds(20), command, "--help");

        assertThat(result.exitCode()).as(result.output()).isZero();
        List<String> options = switch (command) {
            case "router" -> List.of("--model", "--prefill", "--decode", "--routing", "--http-port", "--grpc-port");
            case "prefill" -> List.of("--model", "--host", "--grpc-port", "--kv-port", "--metrics-port", "--worker-id");
            case "decode" -> List.of("--model", "--host", "--grpc-port", "--metrics-port", "--worker-id");
            default -> throw new IllegalArgumentException(command);
        };
        assertThat(result.output()).contains("Usage: tandem " + command).contains(options);
    }

    /** Every worker holds no KV block and no request (leases released, sequences ended). */
    private static void awaitIdleWorkers(LocalCluster cluster) throws Exception {
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
