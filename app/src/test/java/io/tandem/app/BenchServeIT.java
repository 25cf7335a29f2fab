package io.tandem.app;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.tandem.bench.BenchCommand;
import io.tandem.engine.ReferenceModel;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
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

    private static ServeProcess server;

    @TempDir
    Path dir;

    @BeforeAll
    static void startServer() throws Exception {
        server = ServeProcess.start(ReferenceModel.ggufPath());
    }

    @AfterAll
    static void stopServer() throws InterruptedException {
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
        JsonNode result = bench("--api", "openai", "--endpoint", server.httpBase());

        assertAllCompleted(result);
        // Token-id prompts: the server counts exactly the ids sent.
        assertThat(result.get("total_input_tokens").asLong()).isEqualTo((long) PROMPTS * INPUT_LEN);
        assertThat(result.get("model_id").asText()).isEqualTo("stories260K");
    }

    @Test
    void shouldStreamEveryRequestedTokenOverGrpc() throws IOException {
        JsonNode result = bench("--api", "grpc", "--endpoint", server.grpcTarget());

        assertAllCompleted(result);
        assertThat(result.get("total_input_tokens").asLong()).isEqualTo((long) PROMPTS * INPUT_LEN);
    }

    @Test
    void shouldStreamEveryRequestedTokenOverOpenAiChat() throws IOException {
        JsonNode result = bench("--api", "openai", "--endpoint", server.httpBase(), "--endpoint-type", "chat");

        assertAllCompleted(result);
        // Text prompts through the chat template: longer than the 32 words, as the server reports.
        assertThat(result.get("total_input_tokens").asLong()).isGreaterThan((long) PROMPTS * INPUT_LEN);
    }

    @Test
    void shouldFailEveryRequestForAnUnknownModelWithTheHttp404Reason() throws IOException {
        JsonNode result = bench("--api", "openai", "--endpoint", server.httpBase(), "--model", "no-such-model");

        assertThat(result.get("completed").asInt()).isZero();
        assertThat(result.get("failed").asInt()).isEqualTo(PROMPTS);
        assertThat(JSON.convertValue(result.get("failure_reasons"), Map.class))
                .containsExactly(Map.entry("HTTP 404: The model 'no-such-model' does not exist", PROMPTS));
    }

    @Test
    void shouldFailEveryRequestForAnUnknownModelWithTheGrpcNotFoundReason() throws IOException {
        JsonNode result = bench("--api", "grpc", "--endpoint", server.grpcTarget(), "--model", "no-such-model");

        assertThat(result.get("failed").asInt()).isEqualTo(PROMPTS);
        assertThat(JSON.convertValue(result.get("failure_reasons"), Map.class))
                .containsExactly(Map.entry("gRPC NOT_FOUND: The model 'no-such-model' does not exist", PROMPTS));
    }

    /**
     * A {@code tandem serve} process on free ports: the JVM running this test, with the flags of
     * {@code bin/tandem}, on the jar failsafe names in {@code tandem.jar}. Its stderr goes to
     * {@code target/bench-serve-it-server.log}.
     */
    static final class ServeProcess implements AutoCloseable {
        private static final Pattern READY =
                Pattern.compile("tandem: serving on http://(\\S+):(\\d+) \\(OpenAI\\) and grpc (\\S+):(\\d+)");
        private static final long READY_TIMEOUT_SECONDS = 60;

        private final Process process;
        private final String httpBase;
        private final String grpcTarget;

        private ServeProcess(Process process, String httpBase, String grpcTarget) {
            this.process = process;
            this.httpBase = httpBase;
            this.grpcTarget = grpcTarget;
        }

        static ServeProcess start(Path model) throws Exception {
            Path jar = Path.of(System.getProperty("tandem.jar", "target/tandem.jar")).toAbsolutePath();
            assertThat(jar).as("the shaded jar (run through failsafe after package)").isRegularFile();
            Path log = jar.resolveSibling("bench-serve-it-server.log");
            String java = ProcessHandle.current().info().command().orElseThrow();
            Process process = new ProcessBuilder(java,
                    "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                    "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED",
                    "-jar", jar.toString(), "serve", "--model", model.toAbsolutePath().toString(),
                    "--http-port", "0", "--grpc-port", "0")
                    .redirectError(log.toFile())
                    .start();
            BufferedReader stdout = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
            CompletableFuture<Matcher> ready = CompletableFuture.supplyAsync(() -> awaitReadyLine(stdout));
            Matcher matcher;
            try {
                matcher = ready.get(READY_TIMEOUT_SECONDS, TimeUnit.SECONDS);
            } catch (Exception e) {
                process.destroyForcibly();
                throw new IllegalStateException("tandem serve did not become ready; its stderr:\n" + Files.readString(log), e);
            }
            // Keep draining stdout so the server never blocks on a full pipe.
            Thread.ofVirtual().start(() -> stdout.lines().forEach(line -> { }));
            return new ServeProcess(process, "http://" + matcher.group(1) + ":" + matcher.group(2),
                    matcher.group(3) + ":" + matcher.group(4));
        }

        private static Matcher awaitReadyLine(BufferedReader stdout) {
            try {
                String line;
                while ((line = stdout.readLine()) != null) {
                    Matcher matcher = READY.matcher(line);
                    if (matcher.find()) {
                        return matcher;
                    }
                }
                throw new IllegalStateException("tandem serve exited before printing its ready line");
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        }

        String httpBase() {
            return httpBase;
        }

        String grpcTarget() {
            return grpcTarget;
        }

        @Override
        public void close() throws InterruptedException {
            process.destroy();
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
        }
    }
}
