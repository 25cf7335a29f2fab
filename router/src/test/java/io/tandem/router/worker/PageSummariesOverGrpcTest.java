package io.tandem.router.worker;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.stub.StreamObserver;
import io.tandem.control.HostPort;
import io.tandem.control.PrefillMessages;
import io.tandem.control.HealthCheckedGrpcServer;
import io.tandem.engine.DecodeRequest;
import io.tandem.engine.FinishReason;
import io.tandem.engine.PrefillCallback;
import io.tandem.engine.PrefillRequest;
import io.tandem.engine.PrefillResult;
import io.tandem.engine.TokenSink;
import io.tandem.engine.sampling.SamplingParams;
import io.tandem.kvcache.KvCacheSpec;
import io.tandem.kvcache.KvDtype;
import io.tandem.kvcache.KvHandle;
import io.tandem.kvcache.PageSummaries;
import io.tandem.proto.v1.DecodeResponse;
import io.tandem.proto.v1.DecodeWorkerGrpc;
import io.tandem.proto.v1.PrefillResponse;
import io.tandem.proto.v1.PrefillWorkerGrpc;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The page summaries of a 2,048-token prompt at Llama-3-8B geometry (32 layers × 8 KV heads × head
 * dim 128, blocks of 16: 16 MiB, four times gRPC's default message limit) travel prefill worker →
 * router → decode worker over real gRPC on loopback: the workers' servers ({@link HealthCheckedGrpcServer})
 * and the router's clients accept them.
 */
@Timeout(60)
class PageSummariesOverGrpcTest {
    private static final KvCacheSpec LLAMA_3_8B = new KvCacheSpec(32, 8, 128, 16, KvDtype.F16);
    private static final int NUM_TOKENS = 2048;

    private final ScheduledExecutorService scheduler = Executors.newSingleThreadScheduledExecutor();
    private HealthCheckedGrpcServer server;
    private WorkerClient client;

    @AfterEach
    void stop() {
        if (client != null) {
            client.close();
        }
        if (server != null) {
            server.close();
        }
        scheduler.shutdownNow();
    }

    private static KvHandle handleWithSummaries() {
        int numBlocks = LLAMA_3_8B.blocksFor(NUM_TOKENS);
        byte[] bytes = new byte[Math.toIntExact(PageSummaries.byteSize(LLAMA_3_8B, numBlocks))];
        for (int i = 0; i < bytes.length; i++) {
            bytes[i] = (byte) (i * 31 + (i >>> 16));
        }
        int[] blockIds = new int[numBlocks];
        for (int i = 0; i < numBlocks; i++) {
            blockIds[i] = numBlocks - i;
        }
        return new KvHandle("prefill-a", 1, 7, blockIds, NUM_TOKENS, LLAMA_3_8B,
                PageSummaries.fromBytes(LLAMA_3_8B, numBlocks, ByteBuffer.wrap(bytes)));
    }

    @Test
    void shouldReceiveAPrefillResultWithSixteenMebibytesOfPageSummaries() throws Exception {
        KvHandle handle = handleWithSummaries();
        assertThat(handle.pageSummaries().byteSize()).isEqualTo(16 << 20);
        server = new HealthCheckedGrpcServer(PrefillWorkerGrpc.SERVICE_NAME, new PrefillWorkerGrpc.PrefillWorkerImplBase() {
            @Override
            public void prefill(io.tandem.proto.v1.PrefillRequest request, StreamObserver<PrefillResponse> out) {
                out.onNext(PrefillMessages.toProto(new PrefillResult(request.getRequestId(), 5, handle, 1, 2), "127.0.0.1:7100"));
                out.onCompleted();
            }
        }).start("127.0.0.1", 0);
        GrpcPrefillWorkerClient prefill = new GrpcPrefillWorkerClient(new HostPort("127.0.0.1", server.port()),
                new KvAddressBook(), scheduler, Duration.ofSeconds(30));
        client = prefill;
        CompletableFuture<PrefillResult> result = new CompletableFuture<>();
        assertThat(prefill.prefill(new PrefillRequest("r", new int[NUM_TOKENS], SamplingParams.greedy(4), 0), new PrefillCallback() {
            @Override
            public void onPrefilled(PrefillResult r) {
                result.complete(r);
            }

            @Override
            public void onFailed(Throwable error) {
                result.completeExceptionally(error);
            }
        })).isTrue();

        assertThat(result.get(30, TimeUnit.SECONDS).kvHandle().pageSummaries().toByteArray())
                .isEqualTo(handle.pageSummaries().toByteArray());
    }

    @Test
    void shouldSendADecodeRequestWithSixteenMebibytesOfPageSummaries() throws Exception {
        KvHandle handle = handleWithSummaries();
        CompletableFuture<io.tandem.proto.v1.DecodeRequest> received = new CompletableFuture<>();
        server = new HealthCheckedGrpcServer(DecodeWorkerGrpc.SERVICE_NAME, new DecodeWorkerGrpc.DecodeWorkerImplBase() {
            @Override
            public void decode(io.tandem.proto.v1.DecodeRequest request, StreamObserver<DecodeResponse> out) {
                received.complete(request);
                out.onNext(DecodeResponse.newBuilder()
                        .setFinishReason(io.tandem.proto.v1.FinishReason.FINISH_REASON_LENGTH).build());
                out.onCompleted();
            }
        }).start("127.0.0.1", 0);
        GrpcDecodeWorkerClient decode = new GrpcDecodeWorkerClient(new HostPort("127.0.0.1", server.port()),
                new KvAddressBook(), scheduler, Duration.ofSeconds(30));
        client = decode;
        CompletableFuture<FinishReason> finish = new CompletableFuture<>();
        assertThat(decode.decode(new DecodeRequest("r", new int[NUM_TOKENS], 5, handle, SamplingParams.greedy(4), 0),
                new TokenSink() {
                    @Override
                    public void onToken(int tokenId) {}

                    @Override
                    public void onFinish(FinishReason reason) {
                        finish.complete(reason);
                    }

                    @Override
                    public void onError(Throwable e) {
                        finish.completeExceptionally(e);
                    }
                }, () -> {})).isTrue();

        assertThat(finish.get(30, TimeUnit.SECONDS)).isEqualTo(FinishReason.LENGTH);
        assertThat(received.get().getKvHandle().getPageSummaries().getData().toByteArray())
                .isEqualTo(handle.pageSummaries().toByteArray());
    }
}
