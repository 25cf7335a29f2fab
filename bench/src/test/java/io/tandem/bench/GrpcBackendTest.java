package io.tandem.bench;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import io.tandem.proto.v1.GenerateRequest;
import io.tandem.proto.v1.GenerateResponse;
import io.tandem.proto.v1.GenerationGrpc;
import io.tandem.proto.v1.ListModelsRequest;
import io.tandem.proto.v1.ListModelsResponse;
import io.tandem.proto.v1.ModelCard;
import io.tandem.proto.v1.SamplingParams;
import io.tandem.proto.v1.Usage;
import java.io.IOException;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@link GrpcBackend} against a scripted {@code tandem.v1.Generation} server on loopback. The
 * script is chosen by the requested model: {@code ok} streams three messages, {@code missing}
 * fails NOT_FOUND, {@code stuck} never answers.
 */
@Timeout(30)
class GrpcBackendTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(10);
    private static final SampleRequest REQUEST = new SampleRequest(new Prompt.TokenIds(new int[] {300, 301}), 2, 4);

    private final AtomicReference<GenerateRequest> received = new AtomicReference<>();
    private Server server;
    private String target;

    @BeforeEach
    void startServer() throws IOException {
        server = Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create())
                .addService(new ScriptedGeneration(received))
                .build()
                .start();
        target = "127.0.0.1:" + server.getPort();
    }

    @AfterEach
    void stopServer() {
        server.shutdownNow();
    }

    /** Streams token ids 5 | 6 7 | 8 + usage for model {@code ok}, 40 ms apart. */
    static final class ScriptedGeneration extends GenerationGrpc.GenerationImplBase {
        private final AtomicReference<GenerateRequest> received;

        ScriptedGeneration(AtomicReference<GenerateRequest> received) {
            this.received = received;
        }

        @Override
        public void generate(GenerateRequest request, StreamObserver<GenerateResponse> responses) {
            received.set(request);
            switch (request.getModel()) {
                case "ok" -> {
                    responses.onNext(GenerateResponse.newBuilder().addTokenIds(5).build());
                    sleep(40);
                    responses.onNext(GenerateResponse.newBuilder().addTokenIds(6).addTokenIds(7).build());
                    sleep(40);
                    responses.onNext(GenerateResponse.newBuilder().addTokenIds(8)
                            .setFinishReason(io.tandem.proto.v1.FinishReason.FINISH_REASON_LENGTH)
                            .setUsage(Usage.newBuilder().setPromptTokens(2).setCompletionTokens(4).setTotalTokens(6))
                            .build());
                    responses.onCompleted();
                }
                case "missing" -> responses.onError(Status.NOT_FOUND.withDescription("The model 'missing' does not exist").asRuntimeException());
                default -> { } // "stuck": never answers
            }
        }

        @Override
        public void listModels(ListModelsRequest request, StreamObserver<ListModelsResponse> responses) {
            responses.onNext(ListModelsResponse.newBuilder()
                    .addModels(ModelCard.newBuilder().setId("first"))
                    .addModels(ModelCard.newBuilder().setId("second"))
                    .build());
            responses.onCompleted();
        }

        private static void sleep(long millis) {
            try {
                Thread.sleep(millis);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    @Test
    void shouldTimeEveryMessageCarryingTokensAndTakeCountsFromUsage() throws Exception {
        try (GrpcBackend backend = new GrpcBackend(target, TIMEOUT)) {
            RequestResult.Success s = (RequestResult.Success) backend.send("ok", REQUEST);

            assertThat(s.outputTokens()).isEqualTo(4);
            assertThat(s.promptTokens()).isEqualTo(2);
            // Three messages, three chunks: two gaps of about 40 ms.
            assertThat(s.itlNanos()).hasSize(2);
            assertThat(s.e2elNanos() - s.ttftNanos()).isGreaterThanOrEqualTo(TimeUnit.MILLISECONDS.toNanos(70));
        }
    }

    @Test
    void shouldAskForGreedyOutputOfTheExpectedLengthIgnoringEos() throws Exception {
        try (GrpcBackend backend = new GrpcBackend(target, TIMEOUT)) {
            backend.send("ok", REQUEST);
        }

        assertThat(received.get()).isEqualTo(GenerateRequest.newBuilder()
                .setModel("ok")
                .addPromptTokenIds(300).addPromptTokenIds(301)
                .setSampling(SamplingParams.newBuilder().setTemperature(0).setMaxTokens(4).setIgnoreEos(true))
                .build());
    }

    @Test
    void shouldSendTextPromptsAsPrompt() throws Exception {
        try (GrpcBackend backend = new GrpcBackend(target, TIMEOUT)) {
            backend.send("ok", new SampleRequest(new Prompt.Text("Once upon a time"), 5, 4));
        }

        assertThat(received.get().getPrompt()).isEqualTo("Once upon a time");
        assertThat(received.get().getPromptTokenIdsList()).isEmpty();
    }

    @Test
    void shouldReportTheStatusCodeAndDescriptionOfAFailedCall() throws Exception {
        try (GrpcBackend backend = new GrpcBackend(target, TIMEOUT)) {
            assertThat(backend.send("missing", REQUEST))
                    .isEqualTo(new RequestResult.Failure("gRPC NOT_FOUND: The model 'missing' does not exist"));
        }
    }

    @Test
    void shouldEndAStuckCallAtItsDeadlineAsATimeoutFailure() throws Exception {
        try (GrpcBackend backend = new GrpcBackend(target, Duration.ofMillis(300))) {
            long start = System.nanoTime();

            assertThat(backend.send("stuck", REQUEST)).isEqualTo(new RequestResult.Failure("timeout after 0.3 s"));
            assertThat(System.nanoTime() - start).isLessThan(TimeUnit.SECONDS.toNanos(5));
        }
    }

    @Test
    void shouldListTheServedModelIdsInOrder() throws Exception {
        try (GrpcBackend backend = new GrpcBackend(target, TIMEOUT)) {
            assertThat(backend.listModels()).containsExactly("first", "second");
        }
    }
}
