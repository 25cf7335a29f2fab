package io.tandem.app;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.tandem.bench.BenchCommand;
import io.tandem.engine.ReferenceModel;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * {@code tandem bench serve}, run in-process, against a real {@code tandem serve} process on
 * stories260K: both APIs produce exactly the requested tokens with ordered latency percentiles, and
 * a wrong model name fails every request with the server's not-found reason.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class BenchServeIT {

    private static final int PROMPTS = 20;
    private static final int INPUT_LEN = 32;
    private static final int OUTPUT_LEN = 16;
    private static final ObjectMapper JSON = new ObjectMapper();

    private static TandemProcess server;

    @TempDir
    Path dir;

    @BeforeAll
    static void startServer() throws Exception {
        server = TandemProcess.serve(Duration.ofSeconds(60), "--model", ReferenceModel.ggufPath().toAbsolutePath().toString(),
                "--http-port", "0", "--grpc-port", "0");
    }

    @AfterAll
    static void stopServer() {
        if (server != null) {
            server.close();
        }
    }

    /** Runs {@code tandem bench serve} in this JVM with the IT's workload; returns the saved JSON. */
    private JsonNode bench(String... args) throws IOException {
        Path result = dir.resolve("result.json");
        List<String> all = new ArrayList<>(List.of("serve", "--num-prompts", Integer.toString(PROMPTS),
                "--input-len", Integer.toString(INPUT_LEN), "--output-len", Integer.toString(OUTPUT_LEN),
                "--request-rate", "50", "--seed", "1", "--timeout", "60", "--save-result", result.toString()));
        all.addAll(List.of(args));
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int exit = new CommandLine(new BenchCommand()).setOut(new PrintWriter(out)).setErr(new PrintWriter(err))
                .execute(all.toArray(String[]::new));
        assertThat(exit).as("exit code; stderr:%n%s", err).isZero();
        assertThat(out.toString()).contains("============ Serving Benchmark Result ============");
        return JSON.readTree(result.toFile());
    }

    private static void assertAllCompleted(JsonNode result) {
        assertThat(result.get("completed").asInt()).as("completed; failures %s", result.get("failure_reasons")).isEqualTo(PROMPTS);
        assertThat(result.get("failed").asInt()).isZero();
        assertThat(result.get("total_output_tokens").asLong()).isEqualTo((long) PROMPTS * OUTPUT_LEN);
        assertThat(result.get("request_throughput").asDouble()).isPositive();
        for (String metric : List.of("ttft", "tpot", "e2el")) {
            double median = result.get("median_" + metric + "_ms").asDouble();
            double p90 = result.get("p90_" + metric + "_ms").asDouble();
            double p99 = result.get("p99_" + metric + "_ms").asDouble();
            assertThat(result.get("mean_" + metric + "_ms").asDouble()).as("mean " + metric).isPositive();
            assertThat(median).as("median " + metric).isPositive().isLessThanOrEqualTo(p90);
            assertThat(p90).as("p90 " + metric).isLessThanOrEqualTo(p99);
        }
        assertThat(result.get("median_e2el_ms").asDouble()).isGreaterThanOrEqualTo(result.get("median_ttft_ms").asDouble());
    }

    @Test
    void shouldStreamEveryRequestedTokenOverOpenAiCompletions() throws IOException {
        JsonNode result = bench("--api", "openai", "--endpoint", "http://" + server.host() + ":" + server.httpPort());

        assertAllCompleted(result);
        // Token-id prompts: the server counts exactly the ids sent.
        assertThat(result.get("total_input_tokens").asLong()).isEqualTo((long) PROMPTS * INPUT_LEN);
        assertThat(result.get("model_id").asText()).isEqualTo("stories260K");
    }

    @Test
    void shouldStreamEveryRequestedTokenOverGrpc() throws IOException {
        JsonNode result = bench("--api", "grpc", "--endpoint", server.host() + ":" + server.grpcPort());

        assertAllCompleted(result);
        assertThat(result.get("total_input_tokens").asLong()).isEqualTo((long) PROMPTS * INPUT_LEN);
    }

    @Test
    void shouldStreamEveryRequestedTokenOverOpenAiChat() throws IOException {
        JsonNode result = bench("--api", "openai", "--endpoint", "http://" + server.host() + ":" + server.httpPort(), "--endpoint-type", "chat");

        assertAllCompleted(result);
        // Text prompts through the chat template: longer than the 32 words, as the server reports.
        assertThat(result.get("total_input_tokens").asLong()).isGreaterThan((long) PROMPTS * INPUT_LEN);
    }

    @Test
    void shouldFailEveryRequestForAnUnknownModelWithTheHttp404Reason() throws IOException {
        JsonNode result = bench("--api", "openai", "--endpoint", "http://" + server.host() + ":" + server.httpPort(), "--model", "no-such-model");

        assertThat(result.get("completed").asInt()).isZero();
        assertThat(result.get("failed").asInt()).isEqualTo(PROMPTS);
        assertThat(JSON.convertValue(result.get("failure_reasons"), Map.class))
                .containsExactly(Map.entry("HTTP 404: The model 'no-such-model' does not exist", PROMPTS));
    }

    @Test
    void shouldFailEveryRequestForAnUnknownModelWithTheGrpcNotFoundReason() throws IOException {
        JsonNode result = bench("--api", "grpc", "--endpoint", server.host() + ":" + server.grpcPort(), "--model", "no-such-model");

        assertThat(result.get("failed").asInt()).isEqualTo(PROMPTS);
        assertThat(JSON.convertValue(result.get("failure_reasons"), Map.class))
                .containsExactly(Map.entry("gRPC NOT_FOUND: The model 'no-such-model' does not exist", PROMPTS));
    }
}
