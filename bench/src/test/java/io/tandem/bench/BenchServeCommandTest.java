package io.tandem.bench;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.stub.StreamObserver;
import io.tandem.proto.v1.GenerateRequest;
import io.tandem.proto.v1.GenerateResponse;
import io.tandem.proto.v1.GenerationGrpc;
import io.tandem.proto.v1.ListModelsRequest;
import io.tandem.proto.v1.ListModelsResponse;
import io.tandem.proto.v1.ModelCard;
import io.tandem.proto.v1.Usage;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code bench serve} from the command line against a gRPC server that streams max_tokens tokens. */
@Timeout(60)
class BenchServeCommandTest {

    @TempDir
    Path dir;

    private Server server;
    private String target;
    private final StringWriter out = new StringWriter();
    private final StringWriter err = new StringWriter();

    /** Streams {@code max_tokens} messages of one token each; usage counts the prompt ids. */
    static final class CountingGeneration extends GenerationGrpc.GenerationImplBase {
        @Override
        public void generate(GenerateRequest request, StreamObserver<GenerateResponse> responses) {
            int tokens = request.getSampling().getMaxTokens();
            for (int i = 0; i < tokens; i++) {
                GenerateResponse.Builder message = GenerateResponse.newBuilder().addTokenIds(300 + i);
                if (i == tokens - 1) {
                    message.setUsage(Usage.newBuilder().setPromptTokens(request.getPromptTokenIdsCount()).setCompletionTokens(tokens));
                }
                responses.onNext(message.build());
            }
            responses.onCompleted();
        }

        @Override
        public void listModels(ListModelsRequest request, StreamObserver<ListModelsResponse> responses) {
            responses.onNext(ListModelsResponse.newBuilder().addModels(ModelCard.newBuilder().setId("counting")).build());
            responses.onCompleted();
        }
    }

    @BeforeEach
    void startServer() throws IOException {
        server = Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create()).addService(new CountingGeneration()).build().start();
        target = "127.0.0.1:" + server.getPort();
    }

    @AfterEach
    void stopServer() {
        server.shutdownNow();
    }

    private int bench(String... args) {
        List<String> all = new ArrayList<>(List.of("serve"));
        all.addAll(List.of(args));
        return new CommandLine(new BenchCommand()).setOut(new PrintWriter(out)).setErr(new PrintWriter(err))
                .execute(all.toArray(String[]::new));
    }

    @Test
    void shouldRunTheWholeBenchmarkAndSaveEveryFigureWithTheConfig() throws IOException {
        Path result = dir.resolve("out/result.json");

        int exit = bench("--api", "grpc", "--endpoint", target, "--num-prompts", "8", "--input-len", "6", "--output-len", "3",
                "--request-rate", "inf", "--max-concurrency", "3", "--goodput", "e2el:60000", "--seed", "4",
                "--save-result", result.toString(), "--save-detailed");

        assertThat(exit).as(err.toString()).isZero();
        assertThat(out.toString()).contains("Successful requests:                     8", "Total generated tokens:                  24");
        JsonNode json = new ObjectMapper().readTree(result.toFile());
        assertThat(json.get("model_id").asText()).isEqualTo("counting");
        assertThat(json.get("api").asText()).isEqualTo("grpc");
        assertThat(json.get("request_rate").asText()).isEqualTo("inf");
        assertThat(json.get("max_concurrency").asInt()).isEqualTo(3);
        assertThat(json.get("seed").asLong()).isEqualTo(4);
        assertThat(json.get("completed").asInt()).isEqualTo(8);
        assertThat(json.get("failed").asInt()).isZero();
        assertThat(json.get("total_input_tokens").asLong()).isEqualTo(8 * 6);
        assertThat(json.get("total_output_tokens").asLong()).isEqualTo(8 * 3);
        assertThat(json.get("request_goodput").asDouble()).isEqualTo(json.get("request_throughput").asDouble());
        assertThat(json.get("goodput").get("e2el").asDouble()).isEqualTo(60000);
        assertThat(json.get("itls")).hasSize(8).allSatisfy(gaps -> assertThat(gaps).hasSize(2));
        assertThat(json.get("output_lens")).hasSize(8).allSatisfy(n -> assertThat(n.asInt()).isEqualTo(3));
    }

    @Test
    void shouldFollowTheTraceTimestampsForMooncake() throws IOException {
        Path trace = Files.write(dir.resolve("trace.jsonl"), List.of(
                "{\"timestamp\": 0, \"input_length\": 700, \"output_length\": 2, \"hash_ids\": [1, 2]}",
                "{\"timestamp\": 300, \"input_length\": 600, \"output_length\": 3, \"hash_ids\": [1, 3]}"));
        Path result = dir.resolve("result.json");

        int exit = bench("--api", "grpc", "--endpoint", target, "--dataset-name", "mooncake", "--dataset-path", trace.toString(),
                "--save-result", result.toString());

        assertThat(exit).as(err.toString()).isZero();
        JsonNode json = new ObjectMapper().readTree(result.toFile());
        assertThat(json.get("num_prompts").asInt()).isEqualTo(2);
        assertThat(json.get("request_rate").asText()).isEqualTo("trace");
        assertThat(json.get("total_input_tokens").asLong()).isEqualTo(1300);
        assertThat(json.get("total_output_tokens").asLong()).isEqualTo(5);
        assertThat(json.get("duration").asDouble()).isGreaterThanOrEqualTo(0.3);
    }

    @Test
    void shouldRejectInvalidOptionsWithExitCodeTwoNamingTheOption() throws IOException {
        Path missing = dir.resolve("missing.jsonl");
        assertRejected("--api must be openai or grpc, got 'rest'", "--api", "rest");
        assertRejected("--endpoint-type chat applies to --api openai only", "--api", "grpc", "--endpoint-type", "chat");
        assertRejected("--request-rate: request rate must be a positive number or inf, got '0'", "--request-rate", "0");
        assertRejected("--token-id-range: token id range must satisfy 0 <= LO < HI, got 9:3", "--token-id-range", "9:3");
        assertRejected("--goodput: goodput objective 'ttfb:5' has an unknown key", "--goodput", "ttfb:5");
        assertRejected("--max-concurrency must be >= 1, got 0", "--max-concurrency", "0");
        assertRejected("--dataset-name prefix needs --prefix-len >= 1", "--dataset-name", "prefix", "--model", "m");
        assertRejected("--dataset-name sharegpt needs --dataset-path", "--dataset-name", "sharegpt", "--model", "m");
        assertRejected("--request-rate does not apply to mooncake", "--dataset-name", "mooncake", "--request-rate", "5",
                "--dataset-path", missing.toString(), "--model", "m");
    }

    private void assertRejected(String message, String... args) {
        err.getBuffer().setLength(0);
        assertThat(bench(args)).as(err.toString()).isEqualTo(2);
        assertThat(err.toString()).contains(message);
    }

    @Test
    void shouldExitWithOneWhenTheModelsCannotBeListed() throws IOException {
        int closedPort;
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            closedPort = socket.getLocalPort();
        }

        assertThat(bench("--endpoint", "http://127.0.0.1:" + closedPort, "--num-prompts", "1")).isEqualTo(1);
        assertThat(err.toString()).contains("cannot list the models of http://127.0.0.1:" + closedPort);
    }
}
