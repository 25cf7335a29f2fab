package io.tandem.prefill;

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
import io.grpc.stub.StreamObserver;
import io.tandem.control.KvHandleMessages;
import io.tandem.control.PrefillMessages;
import io.tandem.engine.EngineConfig;
import io.tandem.engine.PrefillRequest;
import io.tandem.engine.ReferenceModel;
import io.tandem.engine.backend.CpuBackend;
import io.tandem.engine.model.GgufModelLoader;
import io.tandem.engine.model.LlamaModel;
import io.tandem.engine.sampling.SamplingParams;
import io.tandem.kvcache.KvCacheStorage;
import io.tandem.kvcache.KvDtype;
import io.tandem.kvcache.transfer.KvTransferException;
import io.tandem.kvcache.transfer.KvTransferStatus;
import io.tandem.kvcache.transfer.NettyKvTransport;
import io.tandem.proto.v1.KvHandle;
import io.tandem.proto.v1.LoadReport;
import io.tandem.proto.v1.LoadRequest;
import io.tandem.proto.v1.PrefillEvent;
import io.tandem.proto.v1.PrefillResponse;
import io.tandem.proto.v1.PrefillWorkerGrpc;
import io.tandem.proto.v1.ReleaseRequest;
import io.tandem.proto.v1.RenewRequest;
import io.tandem.proto.v1.WorkerRole;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Iterator;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A real prefill worker (stories260K) on loopback, driven through its gRPC API as a router drives it
 * and through its KV data plane as a decode worker pulls from it.
 */
@Timeout(60)
class PrefillWorkerServiceTest {
    private static LlamaModel model;
    private static CpuBackend backend;
    private static PrefillWorker worker;
    private static ManagedChannel channel;
    private static PrefillWorkerGrpc.PrefillWorkerBlockingStub stub;

    @BeforeAll
    static void start() throws Exception {
        model = GgufModelLoader.load(ReferenceModel.ggufPath(), 0);
        backend = new CpuBackend(1);
        // one token a step: a long prompt takes a thousand steps, so a cancel lands mid-prefill
        EngineConfig config = new EngineConfig(16, KvDtype.F32, 64L << 20, 8, 1, 1024, Duration.ofSeconds(30));
        worker = new PrefillWorker(model, backend, config, "prefill-test").start("127.0.0.1", "kv.test", 0, 0, 0);
        channel = Grpc.newChannelBuilderForAddress("127.0.0.1", worker.grpcPort(), InsecureChannelCredentials.create()).build();
        stub = PrefillWorkerGrpc.newBlockingStub(channel).withDeadlineAfter(Duration.ofSeconds(30));
    }

    @AfterAll
    static void stop() throws Exception {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        worker.close();
        backend.close();
        model.close();
    }

    @AfterEach
    void everyBlockFree() throws Exception {
        awaitLoad(r -> r.getNumExported() == 0 && r.getNumFreeBlocks() == r.getNumTotalBlocks()
                && r.getNumRunning() == 0 && r.getNumWaiting() == 0);
    }

    private static io.tandem.proto.v1.PrefillRequest request(String id, int[] prompt) {
        return PrefillMessages.toProto(new PrefillRequest(id, prompt, SamplingParams.greedy(8), 0L));
    }

    @Test
    void shouldAnswerTheReferenceFirstTokenWithAHandleOfThePromptAndFreeItOnRelease() throws Exception {
        ReferenceModel.Case lily = ReferenceModel.cases().get(2);
        PrefillResponse response = stub.prefill(request("lily", lily.promptTokenIds()));
        assertThat(response.getRequestId()).isEqualTo("lily");
        assertThat(response.getFirstToken()).isEqualTo(lily.generatedTokenIds()[0]);
        KvHandle handle = response.getKvHandle();
        LoadReport load = stub.getLoad(LoadRequest.getDefaultInstance());
        assertThat(handle.getWorkerId()).isEqualTo("prefill-test").isEqualTo(load.getWorkerId());
        assertThat(handle.getEpoch()).isEqualTo(load.getEpoch());
        assertThat(worker.kvAddress().port()).as("the bound KV port").isPositive();
        assertThat(handle.getKvAddress()).isEqualTo("kv.test:" + worker.kvAddress().port());
        assertThat(handle.getNumTokens()).isEqualTo(lily.promptTokenIds().length);
        assertThat(handle.getBlockIdsCount()).isEqualTo(1);
        assertThat(handle.getSpec().getNumLayers()).isEqualTo(model.config().numLayers());
        assertThat(response.getTimings().getComputeNs()).isPositive();
        assertThat(load.getRole()).isEqualTo(WorkerRole.WORKER_ROLE_PREFILL);
        assertThat(load.getNumExported()).isEqualTo(1);
        assertThat(load.getNumFreeBlocks()).isEqualTo(load.getNumTotalBlocks() - 1);

        stub.release(ReleaseRequest.newBuilder().setWorkerId(handle.getWorkerId()).setEpoch(handle.getEpoch())
                .setLeaseId(handle.getLeaseId()).build());
        awaitLoad(r -> r.getNumExported() == 0);
        // idempotent
        stub.release(ReleaseRequest.newBuilder().setWorkerId(handle.getWorkerId()).setEpoch(handle.getEpoch())
                .setLeaseId(handle.getLeaseId()).build());
    }

    @Test
    void shouldServeAHandlesPagesOnTheKvDataPlaneAndFreeThemOnARelease() throws Exception {
        io.tandem.kvcache.KvHandle handle = KvHandleMessages.fromProto(
                stub.prefill(request("pull", ReferenceModel.cases().get(2).promptTokenIds())).getKvHandle());
        Function<String, InetSocketAddress> resolver = workerId -> new InetSocketAddress("127.0.0.1", worker.kvAddress().port());
        try (NettyKvTransport transport = new NettyKvTransport(resolver, Duration.ofSeconds(10), 1 << 20, 1);
             KvCacheStorage dst = new KvCacheStorage(handle.spec(), 4)) {
            int[] dstBlocks = {3};
            long sentBefore = worker.kvPayloadBytesSent();
            transport.pull(handle, dst, dstBlocks).get(10, TimeUnit.SECONDS);
            KvCacheStorage src = worker.engine().storage();
            for (int layer = 0; layer < handle.spec().numLayers(); layer++) {
                assertThat(dst.page(layer, dstBlocks[0]).mismatch(src.page(layer, handle.blockIds()[0]))).as("layer %d", layer)
                        .isEqualTo(-1L);
            }
            assertThat(worker.kvPayloadBytesSent() - sentBefore).isEqualTo(handle.byteSize());

            var staleEpoch = new io.tandem.kvcache.KvHandle(handle.workerId(), handle.epoch() - 1, handle.leaseId(),
                    handle.blockIds(), handle.numTokens(), handle.spec());
            assertPullFails(transport.pull(staleEpoch, dst, dstBlocks), KvTransferStatus.STALE_EPOCH);

            transport.release(handle);
            awaitLoad(r -> r.getNumExported() == 0);
            assertPullFails(transport.pull(handle, dst, dstBlocks), KvTransferStatus.UNKNOWN_LEASE);
        }
    }

    private static void assertPullFails(CompletableFuture<Void> pull, KvTransferStatus status) {
        assertThatThrownBy(() -> pull.get(10, TimeUnit.SECONDS)).isInstanceOf(ExecutionException.class).cause()
                .isInstanceOfSatisfying(KvTransferException.class, e -> assertThat(e.status()).isEqualTo(status));
    }

    @Test
    void shouldSendTheEarlyHandleBeforeTheFirstTokenOfTheSameLease() throws Exception {
        ReferenceModel.Case lily = ReferenceModel.cases().get(2);
        Iterator<PrefillEvent> events = stub.prefillWithEarlyHandle(request("early", lily.promptTokenIds()));
        PrefillEvent first = events.next();
        assertThat(first.getEventCase()).isEqualTo(PrefillEvent.EventCase.KV_HANDLE);
        KvHandle handle = first.getKvHandle();
        assertThat(handle.getKvAddress()).isEqualTo("kv.test:" + worker.kvAddress().port());
        assertThat(handle.getNumTokens()).isEqualTo(lily.promptTokenIds().length);
        PrefillEvent last = events.next();
        assertThat(last.getEventCase()).isEqualTo(PrefillEvent.EventCase.RESULT);
        assertThat(last.getResult().getFirstToken()).isEqualTo(lily.generatedTokenIds()[0]);
        // the same handle, with the page summaries its keys had no room for before they were computed
        assertThat(handle.hasPageSummaries()).isFalse();
        var spec = handle.getSpec();
        assertThat(last.getResult().getKvHandle().getPageSummaries().getData().size())
                .isEqualTo(spec.getNumLayers() * handle.getBlockIdsCount() * spec.getNumKvHeads() * 2 * spec.getHeadDim() * 2);
        assertThat(last.getResult().getKvHandle().toBuilder().clearPageSummaries().build()).isEqualTo(handle);
        assertThat(events.hasNext()).isFalse();
        stub.release(ReleaseRequest.newBuilder().setWorkerId(handle.getWorkerId()).setEpoch(handle.getEpoch())
                .setLeaseId(handle.getLeaseId()).build());
    }

    @Test
    void shouldEndTheLeaseAndItsPullsWhenAnEarlyHandleCallIsCancelledBeforeItsResult() throws Exception {
        Context.CancellableContext context = Context.current().withCancellation();
        Iterator<PrefillEvent> events = context.call(() -> stub.prefillWithEarlyHandle(request("early-cancel", longPrompt())));
        io.tandem.kvcache.KvHandle handle = KvHandleMessages.fromProto(events.next().getKvHandle());
        Function<String, InetSocketAddress> resolver = workerId -> new InetSocketAddress("127.0.0.1", worker.kvAddress().port());
        try (NettyKvTransport transport = new NettyKvTransport(resolver, Duration.ofSeconds(30), 1 << 20, 1);
             KvCacheStorage dst = new KvCacheStorage(handle.spec(), handle.blockIds().length)) {
            int[] dstBlocks = java.util.stream.IntStream.range(0, handle.blockIds().length).toArray();
            CompletableFuture<Void> pull = transport.pull(handle, dst, dstBlocks);

            context.cancel(null);

            // PREFILL_ABORTED when the pull was waiting for pages; UNKNOWN_LEASE if it came after the end
            assertThatThrownBy(() -> pull.get(10, TimeUnit.SECONDS)).isInstanceOf(ExecutionException.class).cause()
                    .isInstanceOfSatisfying(KvTransferException.class, e -> assertThat(e.status())
                            .isIn(KvTransferStatus.PREFILL_ABORTED, KvTransferStatus.UNKNOWN_LEASE));
        }
    }

    @Test
    void shouldRenewAHeldLeaseAndRefuseAReleasedOne() {
        KvHandle handle = stub.prefill(request("renew", ReferenceModel.cases().get(1).promptTokenIds())).getKvHandle();
        RenewRequest renew = RenewRequest.newBuilder().setWorkerId(handle.getWorkerId()).setEpoch(handle.getEpoch())
                .setLeaseId(handle.getLeaseId()).build();
        stub.renew(renew);
        stub.release(ReleaseRequest.newBuilder().setWorkerId(handle.getWorkerId()).setEpoch(handle.getEpoch())
                .setLeaseId(handle.getLeaseId()).build());
        assertStatus(() -> stub.renew(renew), Status.Code.FAILED_PRECONDITION, "holds no lease " + handle.getLeaseId());
    }

    @Test
    void shouldRefuseLeaseCallsOfAnEarlierEpochOrAnotherWorker() {
        KvHandle handle = stub.prefill(request("stale", ReferenceModel.cases().get(1).promptTokenIds())).getKvHandle();
        ReleaseRequest release = ReleaseRequest.newBuilder().setWorkerId(handle.getWorkerId()).setEpoch(handle.getEpoch())
                .setLeaseId(handle.getLeaseId()).build();
        assertStatus(() -> stub.release(release.toBuilder().setEpoch(handle.getEpoch() - 1).build()),
                Status.Code.FAILED_PRECONDITION, "stale epoch");
        assertStatus(() -> stub.renew(RenewRequest.newBuilder().setWorkerId("prefill-other").setEpoch(handle.getEpoch())
                .setLeaseId(handle.getLeaseId()).build()), Status.Code.FAILED_PRECONDITION, "prefill-other");
        assertThat(stub.getLoad(LoadRequest.getDefaultInstance()).getNumExported()).isEqualTo(1);
        stub.release(release);
    }

    @Test
    void shouldNameTheFieldOfAnUnservableRequest() {
        assertStatus(() -> stub.prefill(request("bad", new int[] {1, model.config().vocabSize()})),
                Status.Code.INVALID_ARGUMENT, "prompt_token_ids[1]");
        assertStatus(() -> stub.prefill(request("bad", new int[] {1}).toBuilder().clearSampling().build()),
                Status.Code.INVALID_ARGUMENT, "top_p");
    }

    @Test
    void shouldDropThePrefillAndFreeItsBlocksWhenTheCallIsCancelledOrItsDeadlinePasses() throws Exception {
        int[] prompt = longPrompt();
        PrefillWorkerGrpc.PrefillWorkerStub async = PrefillWorkerGrpc.newStub(channel);
        for (int delayMs : new int[] {1, 5, 20}) {
            Context.CancellableContext context = Context.current().withCancellation();
            CompletableFuture<PrefillResponse> response = new CompletableFuture<>();
            context.run(() -> async.prefill(request("cancel-" + delayMs, prompt), observer(response)));
            awaitLoad(r -> r.getNumRunning() + r.getNumWaiting() == 1);
            Thread.sleep(delayMs);
            context.cancel(null);
            assertStatus(response, Status.Code.CANCELLED);
            everyBlockFree();
        }
        CompletableFuture<PrefillResponse> late = new CompletableFuture<>();
        async.withDeadlineAfter(Duration.ofMillis(20)).prefill(request("deadline", prompt), observer(late));
        assertStatus(late, Status.Code.DEADLINE_EXCEEDED);
    }

    @Test
    void shouldServeHealthAndPrefillGauges() throws Exception {
        var health = HealthGrpc.newBlockingStub(channel);
        assertThat(health.check(HealthCheckRequest.newBuilder().setService(PrefillWorkerGrpc.SERVICE_NAME).build()).getStatus())
                .isEqualTo(ServingStatus.SERVING);
        try (HttpClient http = HttpClient.newHttpClient()) {
            HttpResponse<String> metrics = http.send(HttpRequest.newBuilder(
                    URI.create("http://127.0.0.1:" + worker.metricsPort() + "/metrics")).build(), HttpResponse.BodyHandlers.ofString());
            assertThat(metrics.statusCode()).isEqualTo(200);
            assertThat(metrics.body()).contains("tandem:kv_cache_free_blocks{model_name=\"" + model.id() + "\",role=\"prefill\"}");
            String overlapped = "tandem:kv_pages_sent_during_prefill_total{model_name=\"" + model.id() + "\",role=\"prefill\"} ";
            assertThat(metrics.body().lines().filter(line -> line.startsWith(overlapped))
                    .map(line -> Double.parseDouble(line.substring(overlapped.length()))))
                    .containsExactly((double) worker.kvPagesSentWhileComputing());
        }
    }

    /** A thousand tokens (or the context less one): the reference story, over and over. */
    private static int[] longPrompt() {
        int[] story = ReferenceModel.cases().get(0).generatedTokenIds();
        int[] prompt = new int[Math.min(1000, model.config().contextLength() - 1)];
        prompt[0] = model.tokenizer().bosId();
        for (int i = 1; i < prompt.length; i++) {
            prompt[i] = story[i % story.length];
        }
        return prompt;
    }

    private static void assertStatus(CompletableFuture<?> call, Status.Code code) {
        assertThatThrownBy(() -> call.get(10, TimeUnit.SECONDS)).cause().isInstanceOfSatisfying(StatusRuntimeException.class,
                e -> assertThat(e.getStatus().getCode()).isEqualTo(code));
    }

    private static StreamObserver<PrefillResponse> observer(CompletableFuture<PrefillResponse> future) {
        return new StreamObserver<>() {
            @Override
            public void onNext(PrefillResponse value) {
                future.complete(value);
            }

            @Override
            public void onError(Throwable t) {
                future.completeExceptionally(t);
            }

            @Override
            public void onCompleted() {}
        };
    }

    private static void assertStatus(Runnable call, Status.Code code, String descriptionPart) {
        assertThatThrownBy(call::run).isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
            assertThat(e.getStatus().getCode()).isEqualTo(code);
            assertThat(e.getStatus().getDescription()).contains(descriptionPart);
        });
    }

    private static LoadReport awaitLoad(Predicate<LoadReport> condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        LoadReport load = stub.getLoad(LoadRequest.getDefaultInstance());
        while (!condition.test(load)) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("the condition never held; last load report " + load);
            }
            Thread.sleep(5);
            load = stub.getLoad(LoadRequest.getDefaultInstance());
        }
        return load;
    }
}
