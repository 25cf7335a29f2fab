package io.tandem.decode;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.Context;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.tandem.control.DecodeMessages;
import io.tandem.engine.DecodeRequest;
import io.tandem.engine.EngineConfig;
import io.tandem.engine.EngineStats;
import io.tandem.engine.InProcessKvTransport;
import io.tandem.engine.PrefillCallback;
import io.tandem.engine.PrefillEngine;
import io.tandem.engine.PrefillRequest;
import io.tandem.engine.PrefillResult;
import io.tandem.engine.ReferenceModel;
import io.tandem.engine.backend.CpuBackend;
import io.tandem.engine.model.GgufModelLoader;
import io.tandem.engine.model.LlamaModel;
import io.tandem.engine.sampling.SamplingParams;
import io.tandem.kvcache.KvDtype;
import io.grpc.stub.StreamObserver;
import io.tandem.proto.v1.DecodeInput;
import io.tandem.proto.v1.DecodeResponse;
import io.tandem.proto.v1.DecodeWorkerGrpc;
import io.tandem.proto.v1.FinishReason;
import io.tandem.proto.v1.LoadReport;
import io.tandem.proto.v1.LoadRequest;
import io.tandem.proto.v1.WorkerRole;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A real decode worker (stories260K) on loopback, fed handles by a prefill engine in the same JVM
 * (in-process KV transport), driven through its gRPC API as the router drives it.
 */
@Timeout(60)
class DecodeWorkerServiceTest {
    private static LlamaModel model;
    private static CpuBackend backend;
    private static PrefillEngine prefill;
    private static KvSourceDirectory directory;
    private static DecodeWorker worker;
    private static ManagedChannel channel;
    private static DecodeWorkerGrpc.DecodeWorkerBlockingStub stub;

    @BeforeAll
    static void start() throws Exception {
        model = GgufModelLoader.load(ReferenceModel.ggufPath(), 0);
        backend = new CpuBackend(1);
        EngineConfig config = new EngineConfig(16, KvDtype.F32, 64L << 20, 8, 64, 1024, Duration.ofSeconds(30));
        prefill = new PrefillEngine("prefill-a", model, backend, config);
        directory = new KvSourceDirectory();
        worker = new DecodeWorker(model, backend, config, "decode-test", new InProcessKvTransport(prefill), directory)
                .start("127.0.0.1", 0, 0);
        channel = Grpc.newChannelBuilderForAddress("127.0.0.1", worker.grpcPort(), InsecureChannelCredentials.create()).build();
        stub = DecodeWorkerGrpc.newBlockingStub(channel).withDeadlineAfter(Duration.ofSeconds(30));
    }

    @AfterAll
    static void stop() throws Exception {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        worker.close();
        prefill.close();
        backend.close();
        model.close();
    }

    @AfterEach
    void everyBlockFree() throws Exception {
        await(() -> {
            EngineStats p = prefill.stats();
            EngineStats d = worker.engine().stats();
            return p.numExported() == 0 && p.numFreeBlocks() == p.numTotalBlocks() && d.numFreeBlocks() == d.numTotalBlocks()
                    && d.numRunning() + d.numWaiting() == 0 && worker.numLeasesHeld() == 0;
        }, "every KV block free on both sides, no lease held by the decode worker");
    }

    /** Prefills {@code prompt} on the local prefill engine and builds the decode call the router would make. */
    private static io.tandem.proto.v1.DecodeRequest prefilled(String id, int[] prompt, SamplingParams sampling)
            throws Exception {
        CompletableFuture<PrefillResult> result = new CompletableFuture<>();
        assertThat(prefill.submit(new PrefillRequest(id, prompt, sampling, 0L), new PrefillCallback() {
            @Override
            public void onPrefilled(PrefillResult r) {
                result.complete(r);
            }

            @Override
            public void onFailed(Throwable error) {
                result.completeExceptionally(error);
            }
        })).isTrue();
        PrefillResult r = result.get(30, TimeUnit.SECONDS);
        return DecodeMessages.toProto(new DecodeRequest(id, prompt, r.firstToken(), r.kvHandle(), sampling, 0L), "kv-a.test:7100");
    }

    @Test
    void shouldStreamTheReferenceContinuationAfterThePrefilledFirstToken() throws Exception {
        long summaries = worker.engine().numPageSummariesReceived();
        for (ReferenceModel.Case c : ReferenceModel.cases()) {
            int n = Math.min(c.generatedTokenIds().length, 48);
            io.tandem.proto.v1.DecodeRequest request = prefilled(c.name(), c.promptTokenIds(), SamplingParams.greedy(n));
            List<Integer> tokens = new ArrayList<>(List.of(request.getFirstToken()));
            FinishReason finish = FinishReason.FINISH_REASON_UNSPECIFIED;
            for (Iterator<DecodeResponse> it = stub.decode(request); it.hasNext(); ) {
                DecodeResponse response = it.next();
                assertThat(finish).as("a message after the last").isEqualTo(FinishReason.FINISH_REASON_UNSPECIFIED);
                tokens.addAll(response.getTokenIdsList());
                finish = response.getFinishReason();
            }
            assertThat(finish).isEqualTo(FinishReason.FINISH_REASON_LENGTH);
            assertThat(tokens).as(c.name()).containsExactly(boxed(c.generatedTokenIds(), n));
            assertThat(request.getKvHandle().hasPageSummaries()).isTrue();
            assertThat(worker.engine().numPageSummariesReceived()).as("the handle's page summaries kept with the sequence")
                    .isEqualTo(++summaries);
            everyBlockFree();
        }
        assertThat(directory.resolve("prefill-a")).isEqualTo(InetSocketAddress.createUnresolved("kv-a.test", 7100));
    }

    @Test
    void shouldEndTheSequenceAndFreeKvOnBothSidesWhenTheCallIsCancelled() throws Exception {
        io.tandem.proto.v1.DecodeRequest request = prefilled("cancel", ReferenceModel.cases().get(1).promptTokenIds(),
                new SamplingParams(0f, 1f, -1, 500, null, List.of(), true));
        Context.CancellableContext context = Context.current().withCancellation();
        Iterator<DecodeResponse> stream = context.call(() -> stub.decode(request));
        assertThat(stream.next().getFinishReason()).as("the first message: accepted")
                .isEqualTo(FinishReason.FINISH_REASON_UNSPECIFIED);
        while (stream.next().getTokenIdsCount() == 0) {
            // tokens follow the acceptance
        }
        context.cancel(null);
        everyBlockFree();
        assertThatThrownBy(() -> stream.forEachRemaining(r -> {})).isInstanceOfSatisfying(StatusRuntimeException.class,
                e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.CANCELLED));
    }

    @Test
    void shouldNameTheFieldOfAnUnservableRequestAndReleaseItsHandle() throws Exception {
        io.tandem.proto.v1.DecodeRequest valid = prefilled("bad", ReferenceModel.cases().get(1).promptTokenIds(),
                SamplingParams.greedy(8));
        assertStatus(valid.toBuilder().setFirstToken(-1).build(), Status.Code.INVALID_ARGUMENT, "first_token");
        assertStatus(valid.toBuilder().setKvHandle(valid.getKvHandle().toBuilder().setKvAddress("no-port")).build(),
                Status.Code.INVALID_ARGUMENT, "kv_handle.kv_address");
        // the second request's handle was readable: released at once, not at lease expiry
        await(() -> prefill.stats().numExported() == 0, "the handle released");
    }

    @Test
    void shouldFailTheCallWhenTheHandlesKvCannotBePulled() throws Exception {
        io.tandem.proto.v1.DecodeRequest valid = prefilled("stale", ReferenceModel.cases().get(1).promptTokenIds(),
                SamplingParams.greedy(8));
        io.tandem.proto.v1.DecodeRequest stale = valid.toBuilder()
                .setKvHandle(valid.getKvHandle().toBuilder().setEpoch(valid.getKvHandle().getEpoch() - 1)).build();
        assertStatus(stale, Status.Code.INTERNAL, "stale KV handle");
        prefill.release(valid.getKvHandle().getLeaseId());
    }

    @Test
    void shouldWaitForTheFirstTokenOfAnEarlyHandleCallThenStreamTheReferenceContinuation() throws Exception {
        ReferenceModel.Case c = ReferenceModel.cases().get(2);
        int n = Math.min(c.generatedTokenIds().length, 32);
        io.tandem.proto.v1.DecodeRequest request = prefilled("early", c.promptTokenIds(), SamplingParams.greedy(n));
        Responses responses = new Responses();
        StreamObserver<DecodeInput> inputs = DecodeWorkerGrpc.newStub(channel).withDeadlineAfter(Duration.ofSeconds(30))
                .decodeFromEarlyHandle(responses);
        long summaries = worker.engine().numPageSummariesReceived();
        // the request's first_token is not read: the token comes in its own message, and the page
        // summaries (which an early handle lacks) in theirs just before it
        inputs.onNext(DecodeInput.newBuilder().setRequest(request.toBuilder().setFirstToken(0)
                .setKvHandle(request.getKvHandle().toBuilder().clearPageSummaries())).build());
        await(() -> !responses.messages.isEmpty(), "the acceptance message");
        assertThat(worker.engine().stats().numRunning()).as("no step before the first token").isZero();
        assertThat(responses.tokens()).isEmpty();

        assertThat(worker.engine().numPageSummariesReceived()).isEqualTo(summaries);
        inputs.onNext(DecodeInput.newBuilder().setPageSummaries(request.getKvHandle().getPageSummaries()).build());
        inputs.onNext(DecodeInput.newBuilder().setFirstToken(request.getFirstToken()).build());
        inputs.onCompleted();

        responses.done.get(30, TimeUnit.SECONDS);
        assertThat(worker.engine().numPageSummariesReceived()).as("the summaries came with the first token")
                .isEqualTo(summaries + 1);
        List<Integer> tokens = new ArrayList<>(List.of(request.getFirstToken()));
        tokens.addAll(responses.tokens());
        assertThat(tokens).containsExactly(boxed(c.generatedTokenIds(), n));
        assertThat(responses.messages.getLast().getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_LENGTH);
    }

    @Test
    void shouldEndAnEarlyHandleCallWhoseFirstTokenIsNotOneAndFreeKvOnBothSides() throws Exception {
        io.tandem.proto.v1.DecodeRequest request = prefilled("early-bad", ReferenceModel.cases().get(1).promptTokenIds(),
                SamplingParams.greedy(8));
        Responses responses = new Responses();
        StreamObserver<DecodeInput> inputs = DecodeWorkerGrpc.newStub(channel).withDeadlineAfter(Duration.ofSeconds(30))
                .decodeFromEarlyHandle(responses);
        inputs.onNext(DecodeInput.newBuilder().setRequest(request).build());
        inputs.onNext(DecodeInput.newBuilder().setFirstToken(model.config().vocabSize()).build());

        assertThat(responses.done).failsWithin(Duration.ofSeconds(10)).withThrowableThat()
                .havingRootCause().isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
                    assertThat(e.getStatus().getDescription()).contains("first_token");
                });
        everyBlockFree();

        Responses badSummaries = new Responses();
        StreamObserver<DecodeInput> truncated = DecodeWorkerGrpc.newStub(channel).withDeadlineAfter(Duration.ofSeconds(30))
                .decodeFromEarlyHandle(badSummaries);
        io.tandem.proto.v1.DecodeRequest next = prefilled("early-bad-summaries", ReferenceModel.cases().get(1).promptTokenIds(),
                SamplingParams.greedy(8));
        truncated.onNext(DecodeInput.newBuilder().setRequest(next).build());
        truncated.onNext(DecodeInput.newBuilder().setPageSummaries(next.getKvHandle().getPageSummaries().toBuilder()
                .setData(next.getKvHandle().getPageSummaries().getData().substring(2))).build());
        assertThat(badSummaries.done).failsWithin(Duration.ofSeconds(10)).withThrowableThat()
                .havingRootCause().isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
                    assertThat(e.getStatus().getDescription()).contains("page_summaries");
                });
        everyBlockFree();

        Responses early = new Responses();
        StreamObserver<DecodeInput> tokenFirst = DecodeWorkerGrpc.newStub(channel).withDeadlineAfter(Duration.ofSeconds(30))
                .decodeFromEarlyHandle(early);
        tokenFirst.onNext(DecodeInput.newBuilder().setFirstToken(5).build());
        assertThat(early.done).failsWithin(Duration.ofSeconds(10)).withThrowableThat()
                .havingRootCause().isInstanceOfSatisfying(StatusRuntimeException.class,
                        e -> assertThat(e.getStatus().getDescription()).contains("before the request"));
    }

    /** Collects the response messages of one call. */
    private static final class Responses implements StreamObserver<DecodeResponse> {
        final List<DecodeResponse> messages = new java.util.concurrent.CopyOnWriteArrayList<>();
        final CompletableFuture<Void> done = new CompletableFuture<>();

        List<Integer> tokens() {
            return messages.stream().flatMap(m -> m.getTokenIdsList().stream()).toList();
        }

        @Override
        public void onNext(DecodeResponse value) {
            messages.add(value);
        }

        @Override
        public void onError(Throwable t) {
            done.completeExceptionally(t);
        }

        @Override
        public void onCompleted() {
            done.complete(null);
        }
    }

    @Test
    void shouldReportLoadAndHealth() {
        LoadReport load = stub.getLoad(LoadRequest.getDefaultInstance());
        assertThat(load.getWorkerId()).isEqualTo("decode-test");
        assertThat(load.getRole()).isEqualTo(WorkerRole.WORKER_ROLE_DECODE);
        assertThat(load.getEpoch()).isPositive();
        assertThat(load.getNumTotalBlocks()).isPositive();
        assertThat(HealthGrpc.newBlockingStub(channel).check(HealthCheckRequest.newBuilder()
                .setService(DecodeWorkerGrpc.SERVICE_NAME).build()).getStatus()).isEqualTo(ServingStatus.SERVING);
    }

    private static void assertStatus(io.tandem.proto.v1.DecodeRequest request, Status.Code code, String descriptionPart) {
        assertThatThrownBy(() -> stub.decode(request).forEachRemaining(r -> {}))
                .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                    assertThat(e.getStatus().getCode()).isEqualTo(code);
                    assertThat(e.getStatus().getDescription()).contains(descriptionPart);
                });
    }

    private static Integer[] boxed(int[] ids, int n) {
        Integer[] out = new Integer[n];
        for (int i = 0; i < n; i++) {
            out[i] = ids[i];
        }
        return out;
    }

    private static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("not " + what + " after 10 s: prefill " + prefill.stats() + ", decode "
                        + worker.engine().stats());
            }
            Thread.sleep(5);
        }
    }
}
