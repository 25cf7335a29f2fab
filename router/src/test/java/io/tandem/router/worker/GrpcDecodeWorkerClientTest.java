package io.tandem.router.worker;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import io.tandem.control.HostPort;
import io.tandem.engine.DecodeRequest;
import io.tandem.engine.FinishReason;
import io.tandem.engine.TokenSink;
import io.tandem.engine.sampling.SamplingParams;
import io.tandem.kvcache.KvCacheSpec;
import io.tandem.kvcache.KvDtype;
import io.tandem.kvcache.KvHandle;
import io.tandem.proto.v1.DecodeResponse;
import io.tandem.proto.v1.DecodeWorkerGrpc;
import io.tandem.router.OverloadedException;
import java.io.IOException;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Who owns a request's handle when a {@code Decode} call ends: the caller's {@code notAccepted}
 * runs exactly when no message arrived (the worker never took the request), before the sink hears
 * the end; once the worker's first message is in, the handle is the worker's.
 */
@Timeout(30)
class GrpcDecodeWorkerClientTest {
    private static final KvHandle HANDLE = new KvHandle("prefill-a", 1, 7, new int[] {0}, 3,
            new KvCacheSpec(2, 1, 8, 16, KvDtype.F32));
    private static final DecodeRequest REQUEST = new DecodeRequest("r", new int[] {1, 2, 3}, 4, HANDLE,
            SamplingParams.greedy(3), 0);

    private final ScheduledExecutorService scheduler = Executors.newSingleThreadScheduledExecutor();
    private final List<GrpcDecodeWorkerClient> clients = new ArrayList<>();
    private final List<Server> servers = new ArrayList<>();

    @AfterEach
    void stop() throws InterruptedException {
        clients.forEach(GrpcDecodeWorkerClient::close);
        for (Server server : servers) {
            server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
        scheduler.shutdownNow();
    }

    @Test
    void shouldHandTheHandleBackWhenTheWorkerCannotBeReached() throws Exception {
        Ending ending = decode(unusedPort());
        assertThat(ending.error.get(10, TimeUnit.SECONDS)).isInstanceOfSatisfying(WorkerCallException.class,
                e -> assertThat(e.code()).isEqualTo(Status.Code.UNAVAILABLE));
        assertThat(ending.events).containsExactly("notAccepted", "error");
    }

    @Test
    void shouldHandTheHandleBackWhenTheWorkerRefusesTheRequest() throws Exception {
        Ending ending = decode(serve((request, out) ->
                out.onError(Status.RESOURCE_EXHAUSTED.withDescription("engine queue is full").asRuntimeException())));
        assertThat(ending.error.get(10, TimeUnit.SECONDS)).isInstanceOf(OverloadedException.class);
        assertThat(ending.events).containsExactly("notAccepted", "error");
    }

    @Test
    void shouldLeaveTheHandleToTheWorkerOnceItAcceptedTheRequest() throws Exception {
        Ending finished = decode(serve((request, out) -> {
            out.onNext(DecodeResponse.getDefaultInstance());
            out.onNext(DecodeResponse.newBuilder().addTokenIds(5).addTokenIds(6)
                    .setFinishReason(io.tandem.proto.v1.FinishReason.FINISH_REASON_LENGTH).build());
            out.onCompleted();
        }));
        assertThat(finished.finish.get(10, TimeUnit.SECONDS)).isEqualTo(FinishReason.LENGTH);
        assertThat(finished.events).containsExactly("token 5", "token 6", "finish");

        Ending failed = decode(serve((request, out) -> {
            out.onNext(DecodeResponse.getDefaultInstance());
            out.onError(Status.INTERNAL.withDescription("KV hand-off failed").asRuntimeException());
        }));
        assertThat(failed.error.get(10, TimeUnit.SECONDS)).isInstanceOf(WorkerCallException.class);
        assertThat(failed.events).containsExactly("error");
    }

    /** One {@code Decode} of {@link #REQUEST} through a fresh client; records the calls it makes. */
    private Ending decode(int port) {
        Ending ending = new Ending();
        GrpcDecodeWorkerClient client = new GrpcDecodeWorkerClient(new HostPort("127.0.0.1", port), new KvAddressBook(),
                scheduler, Duration.ofSeconds(10));
        clients.add(client);
        assertThat(client.decode(REQUEST, ending, () -> ending.events.add("notAccepted"))).isTrue();
        return ending;
    }

    private int serve(BiConsumer<io.tandem.proto.v1.DecodeRequest, StreamObserver<DecodeResponse>> decode) throws IOException {
        Server server = Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create())
                .addService(new DecodeWorkerGrpc.DecodeWorkerImplBase() {
                    @Override
                    public void decode(io.tandem.proto.v1.DecodeRequest request, StreamObserver<DecodeResponse> out) {
                        decode.accept(request, out);
                    }
                }).build().start();
        servers.add(server);
        return server.getPort();
    }

    private static int unusedPort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0)) {
            return socket.getLocalPort();
        }
    }

    /** A sink recording, in order, what it and {@code notAccepted} hear. */
    private static final class Ending implements TokenSink {
        final List<String> events = new CopyOnWriteArrayList<>();
        final CompletableFuture<FinishReason> finish = new CompletableFuture<>();
        final CompletableFuture<Throwable> error = new CompletableFuture<>();

        @Override
        public void onToken(int tokenId) {
            events.add("token " + tokenId);
        }

        @Override
        public void onFinish(FinishReason reason) {
            events.add("finish");
            finish.complete(reason);
        }

        @Override
        public void onError(Throwable e) {
            events.add("error");
            error.complete(e);
        }
    }
}
