package io.tandem.router.grpc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.DescriptorProtos;
import io.grpc.CallOptions;
import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.protobuf.ProtoUtils;
import io.grpc.reflection.v1.ServerReflectionGrpc;
import io.grpc.reflection.v1.ServerReflectionRequest;
import io.grpc.reflection.v1.ServerReflectionResponse;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.grpc.stub.StreamObserver;
import io.tandem.engine.sampling.SamplingParams;
import io.tandem.proto.v1.FinishReason;
import io.tandem.proto.v1.GenerateRequest;
import io.tandem.proto.v1.GenerateResponse;
import io.tandem.proto.v1.GenerationGrpc;
import io.tandem.proto.v1.ListModelsRequest;
import io.tandem.proto.v1.ModelCard;
import io.tandem.router.CompletionRequest;
import io.tandem.router.testing.EchoGenerationService;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** {@code tandem.v1.Generation} and health over a real loopback gRPC channel. */
@Timeout(30)
class GenerationGrpcServiceTest {

    private EchoGenerationService service;
    private GrpcServer server;
    private ManagedChannel channel;
    private GenerationGrpc.GenerationBlockingStub blocking;

    @BeforeEach
    void start() throws Exception {
        service = new EchoGenerationService();
        server = new GrpcServer(service, true).start("127.0.0.1", 0);
        channel = NettyChannelBuilder.forAddress("127.0.0.1", server.port()).usePlaintext().build();
        blocking = GenerationGrpc.newBlockingStub(channel).withDeadlineAfter(20, TimeUnit.SECONDS);
    }

    @AfterEach
    void stop() throws InterruptedException {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        server.close();
        service.close();
    }

    @Test
    void shouldStreamOneMessagePerTokenWithFinishReasonAndUsageOnTheLast() {
        List<GenerateResponse> responses = new ArrayList<>();
        blocking.generate(request("Hello").setRequestId("req-1")
                .setSampling(io.tandem.proto.v1.SamplingParams.newBuilder().setMaxTokens(3)).build())
                .forEachRemaining(responses::add);

        assertThat(responses).isNotEmpty().allSatisfy(r -> assertThat(r.getRequestId()).isEqualTo("req-1"));
        assertThat(responses.stream().map(GenerateResponse::getText).reduce("", String::concat)).isEqualTo("Hel");
        assertThat(responses.stream().flatMap(r -> r.getTokenIdsList().stream()).toList()).containsExactly(72, 101, 108);
        GenerateResponse last = responses.getLast();
        assertThat(last.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_LENGTH);
        assertThat(last.getUsage().getPromptTokens()).isEqualTo(5);
        assertThat(last.getUsage().getCompletionTokens()).isEqualTo(3);
        assertThat(last.getUsage().getTotalTokens()).isEqualTo(8);
        assertThat(responses.subList(0, responses.size() - 1)).allSatisfy(r -> {
            assertThat(r.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_UNSPECIFIED);
            assertThat(r.hasUsage()).isFalse();
        });
    }

    @Test
    void shouldReadProto3ZeroDefaultsAsDocumented() throws InterruptedException {
        blocking.generate(request("Hi").build()).forEachRemaining(r -> {});

        CompletionRequest admitted = service.nextAdmitted();
        assertThat(admitted.requestId()).matches("gen-[0-9a-f]{32}");
        assertThat(admitted.model()).isNull();
        assertThat(admitted.sampling()).isEqualTo(new SamplingParams(0f, 1f, -1, 16, null, List.of(), false));
    }

    @Test
    void shouldMapEverySamplingField() throws InterruptedException {
        blocking.generate(GenerateRequest.newBuilder().setModel(EchoGenerationService.MODEL).addPromptTokenIds(72)
                .setSampling(io.tandem.proto.v1.SamplingParams.newBuilder().setTemperature(0.5f).setTopP(0.9f).setTopK(40)
                        .setMaxTokens(7).setSeed(42).addStop("x").setIgnoreEos(true))
                .build()).forEachRemaining(r -> {});

        CompletionRequest admitted = service.nextAdmitted();
        assertThat(admitted.model()).isEqualTo(EchoGenerationService.MODEL);
        assertThat(admitted.promptTokenIds()).containsExactly(72);
        assertThat(admitted.sampling()).isEqualTo(new SamplingParams(0.5f, 0.9f, 40, 7, 42L, List.of("x"), true));
    }

    @Test
    void shouldFailWithInvalidArgumentNamingTheField() {
        assertStatus(request("Hi").setSampling(io.tandem.proto.v1.SamplingParams.newBuilder().setMaxTokens(-1)).build(),
                Status.Code.INVALID_ARGUMENT, "max_tokens");
        assertStatus(request("Hi").setSampling(io.tandem.proto.v1.SamplingParams.newBuilder().setTopP(1.5f)).build(),
                Status.Code.INVALID_ARGUMENT, "top_p");
        assertStatus(request("Hi").addPromptTokenIds(1).build(), Status.Code.INVALID_ARGUMENT, "prompt");
        assertStatus(request(EchoGenerationService.INVALID_PROMPT).build(), Status.Code.INVALID_ARGUMENT, "prompt");
    }

    @Test
    void shouldFailWithInvalidArgumentForARequestWhosePromptIsNotUtf8AndServeTheNextCall() {
        // GenerateRequest{prompt: 0xff 0xfe}: field 2, length-delimited; generated builders refuse to write it.
        byte[] request = {0x12, 2, (byte) 0xff, (byte) 0xfe};
        MethodDescriptor<byte[], GenerateResponse> rawGenerate = GenerationGrpc.getGenerateMethod().toBuilder(
                new RawBytes(), ProtoUtils.marshaller(GenerateResponse.getDefaultInstance())).build();

        assertThatThrownBy(() -> ClientCalls.blockingServerStreamingCall(channel, rawGenerate,
                        CallOptions.DEFAULT.withDeadlineAfter(10, TimeUnit.SECONDS), request).forEachRemaining(r -> {}))
                .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
                    assertThat(e.getStatus().getDescription()).contains("tandem.v1.Generation/Generate", "UTF-8");
                });
        assertThat(service.admitted()).isEmpty();
        List<GenerateResponse> next = new ArrayList<>();
        blocking.generate(request("Hi").build()).forEachRemaining(next::add);
        assertThat(next.getLast().getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_STOP);
    }

    /** Sends a request's bytes as they are. */
    private static final class RawBytes implements MethodDescriptor.Marshaller<byte[]> {
        @Override
        public InputStream stream(byte[] value) {
            return new ByteArrayInputStream(value);
        }

        @Override
        public byte[] parse(InputStream stream) {
            throw new UnsupportedOperationException("requests only");
        }
    }

    @Test
    void shouldFailWithNotFoundForUnknownModel() {
        assertStatus(request("Hi").setModel("gpt-9").build(), Status.Code.NOT_FOUND, "gpt-9");
    }

    @Test
    void shouldFailWithResourceExhaustedWhenOverloaded() {
        assertStatus(request(EchoGenerationService.OVERLOAD_PROMPT).build(), Status.Code.RESOURCE_EXHAUSTED, "retry after 7 s");
    }

    @Test
    void shouldFailWithInternalWhenGenerationFailsAfterStart() {
        Iterator<GenerateResponse> responses = blocking.generate(request(EchoGenerationService.FAIL_PREFIX).build());

        assertThat(responses.next().getText()).isEqualTo("f");
        assertThatThrownBy(responses::next).isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
            assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INTERNAL);
            assertThat(e.getStatus().getDescription()).contains(EchoGenerationService.FAILURE_MESSAGE);
        });
    }

    @Test
    void shouldCancelGenerationWhenClientCancels() throws Exception {
        Context.CancellableContext context = Context.current().withCancellation();
        Iterator<GenerateResponse> responses = context.call(() -> blocking.generate(request("hold on").build()));

        assertThat(responses.next().getText()).isEqualTo("h");
        String id = service.nextAdmitted().requestId();
        context.cancel(null);

        assertThat(service.cancelled().poll(10, TimeUnit.SECONDS)).isEqualTo(id);
    }

    @Test
    void shouldMergeOutputWhileClientIsNotReadingAndLoseNothing() throws Exception {
        String prompt = "0123456789".repeat(5_000);
        // A 64 KiB HTTP/2 window: the server's transport stops being ready soon after the client stops reading.
        ManagedChannel narrow = NettyChannelBuilder.forAddress("127.0.0.1", server.port())
                .usePlaintext().flowControlWindow(64 << 10).build();
        CompletableFuture<List<GenerateResponse>> done = new CompletableFuture<>();
        List<GenerateResponse> received = new ArrayList<>();
        GenerationGrpc.newStub(narrow).generate(request(prompt).setRequestId("slow-reader")
                .setSampling(io.tandem.proto.v1.SamplingParams.newBuilder().setMaxTokens(prompt.length())).build(),
                new ClientResponseObserver<GenerateRequest, GenerateResponse>() {
                    private ClientCallStreamObserver<GenerateRequest> call;

                    @Override
                    public void beforeStart(ClientCallStreamObserver<GenerateRequest> requestStream) {
                        call = requestStream;
                        requestStream.disableAutoRequestWithInitial(1);
                    }

                    @Override
                    public void onNext(GenerateResponse response) {
                        received.add(response);
                        if (received.size() == 1) {
                            awaitFinished("slow-reader"); // read nothing more until the service produced everything
                        }
                        call.request(1);
                    }

                    @Override
                    public void onError(Throwable t) {
                        done.completeExceptionally(t);
                    }

                    @Override
                    public void onCompleted() {
                        done.complete(received);
                    }
                });

        List<GenerateResponse> responses;
        try {
            responses = done.get(20, TimeUnit.SECONDS);
        } finally {
            narrow.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }

        assertThat(responses.stream().map(GenerateResponse::getText).reduce("", String::concat)).isEqualTo(prompt);
        assertThat(responses.stream().mapToInt(GenerateResponse::getTokenIdsCount).sum()).isEqualTo(prompt.length());
        assertThat(responses).as("outputs merged while the client did not read").hasSizeLessThan(prompt.length() / 2);
        assertThat(responses.getLast().getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_STOP);
    }

    @Test
    void shouldListModels() {
        List<ModelCard> models = blocking.listModels(ListModelsRequest.getDefaultInstance()).getModelsList();

        assertThat(models).containsExactly(ModelCard.newBuilder().setId(EchoGenerationService.MODEL)
                .setMaxModelLen(EchoGenerationService.MAX_MODEL_LEN).setOwnedBy("tandem").build());
    }

    @Test
    void shouldDescribeTheGenerationServiceOverServerReflection() throws Exception {
        CompletableFuture<ServerReflectionResponse> answer = new CompletableFuture<>();
        StreamObserver<ServerReflectionRequest> requests = ServerReflectionGrpc.newStub(channel)
                .withDeadlineAfter(10, TimeUnit.SECONDS).serverReflectionInfo(new StreamObserver<>() {
                    @Override
                    public void onNext(ServerReflectionResponse response) {
                        answer.complete(response);
                    }

                    @Override
                    public void onError(Throwable t) {
                        answer.completeExceptionally(t);
                    }

                    @Override
                    public void onCompleted() {}
                });
        requests.onNext(ServerReflectionRequest.newBuilder().setFileContainingSymbol(GenerationGrpc.SERVICE_NAME).build());

        ServerReflectionResponse response = answer.get(10, TimeUnit.SECONDS);
        requests.onCompleted();
        assertThat(response.hasErrorResponse()).as("%s", response.getErrorResponse()).isFalse();
        assertThat(DescriptorProtos.FileDescriptorProto.parseFrom(
                response.getFileDescriptorResponse().getFileDescriptorProto(0)).getServiceList())
                .anySatisfy(service -> assertThat(service.getName()).isEqualTo("Generation"));
    }

    @Test
    void shouldReportServingOnStandardHealthService() {
        HealthGrpc.HealthBlockingStub health = HealthGrpc.newBlockingStub(channel);

        assertThat(health.check(HealthCheckRequest.getDefaultInstance()).getStatus()).isEqualTo(ServingStatus.SERVING);
        assertThat(health.check(HealthCheckRequest.newBuilder().setService(GenerationGrpc.SERVICE_NAME).build()).getStatus())
                .isEqualTo(ServingStatus.SERVING);
    }

    @Test
    void shouldCloseIdempotentlyAndRefuseNewCalls() {
        server.close();
        server.close();

        assertThatThrownBy(() -> blocking.listModels(ListModelsRequest.getDefaultInstance()))
                .isInstanceOfSatisfying(StatusRuntimeException.class,
                        e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE));
    }

    private void awaitFinished(String requestId) {
        try {
            assertThat(service.finished().poll(10, TimeUnit.SECONDS)).isEqualTo(requestId);
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
    }

    private void assertStatus(GenerateRequest request, Status.Code code, String descriptionPart) {
        assertThatThrownBy(() -> blocking.generate(request).forEachRemaining(r -> {}))
                .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                    assertThat(e.getStatus().getCode()).isEqualTo(code);
                    assertThat(e.getStatus().getDescription()).contains(descriptionPart);
                });
    }

    private static GenerateRequest.Builder request(String prompt) {
        return GenerateRequest.newBuilder().setPrompt(prompt);
    }
}
