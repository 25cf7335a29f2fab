package io.tandem.bench;

import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.tandem.proto.v1.GenerateRequest;
import io.tandem.proto.v1.GenerateResponse;
import io.tandem.proto.v1.GenerationGrpc;
import io.tandem.proto.v1.ListModelsRequest;
import io.tandem.proto.v1.ModelCard;
import io.tandem.proto.v1.SamplingParams;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Tandem's gRPC API: server-streaming {@code tandem.v1.Generation/Generate} over one plaintext
 * HTTP/2 channel. Responses are observed on the transport thread ({@code directExecutor}: the
 * observer only stamps and counts), so chunk timestamps are taken on arrival. A message carries
 * tokens when {@code token_ids} is non-empty; the last one carries {@code usage}. The per-request
 * timeout is the call's deadline.
 */
public final class GrpcBackend implements Backend {

    /** How long past the deadline to wait before giving up on a call that did not end. */
    private static final Duration DEADLINE_GRACE = Duration.ofSeconds(5);

    private final ManagedChannel channel;
    private final Duration timeout;

    /**
     * @param target  {@code host:port}
     * @param timeout per request, send → end of stream
     */
    public GrpcBackend(String target, Duration timeout) {
        this.channel = Grpc.newChannelBuilder(target, InsecureChannelCredentials.create()).directExecutor().build();
        this.timeout = timeout;
    }

    /** {@code ListModels}: the model ids. */
    @Override
    public List<String> listModels() throws IOException {
        try {
            List<String> ids = new ArrayList<>();
            for (ModelCard card : GenerationGrpc.newBlockingStub(channel).withDeadlineAfter(timeout.toNanos(), TimeUnit.NANOSECONDS)
                    .listModels(ListModelsRequest.getDefaultInstance()).getModelsList()) {
                ids.add(card.getId());
            }
            return ids;
        } catch (StatusRuntimeException e) {
            throw new IOException("ListModels: " + reason(e.getStatus()), e);
        }
    }

    @Override
    public RequestResult send(String model, SampleRequest request) throws InterruptedException {
        GenerateRequest.Builder message = GenerateRequest.newBuilder()
                .setModel(model)
                .setSampling(SamplingParams.newBuilder()
                        .setTemperature(0)
                        .setMaxTokens(request.expectedOutputLen())
                        .setIgnoreEos(true));
        switch (request.prompt()) {
            case Prompt.TokenIds ids -> {
                for (int id : ids.ids()) {
                    message.addPromptTokenIds(id);
                }
            }
            case Prompt.Text text -> message.setPrompt(text.text());
        }
        GenerateRequest built = message.build();
        GenerateStream stream = new GenerateStream(new RequestTimeline(System.nanoTime()));
        GenerationGrpc.newStub(channel).withDeadlineAfter(timeout.toNanos(), TimeUnit.NANOSECONDS).generate(built, stream);
        try {
            stream.done.get(timeout.plus(DEADLINE_GRACE).toNanos(), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            stream.cancel("no end within the deadline");
            return RequestResult.Failure.timeout(timeout);
        } catch (ExecutionException e) {
            Status status = Status.fromThrowable(e.getCause());
            return status.getCode() == Status.Code.DEADLINE_EXCEEDED
                    ? RequestResult.Failure.timeout(timeout)
                    : new RequestResult.Failure(reason(status));
        } catch (InterruptedException e) {
            stream.cancel("benchmark interrupted");
            throw e;
        }
        return stream.timeline.finish(request.promptLen());
    }

    @Override
    public void close() {
        channel.shutdownNow();
    }

    /** {@code gRPC CODE: description}, e.g. {@code gRPC NOT_FOUND: The model 'x' does not exist}. */
    private static String reason(Status status) {
        return "gRPC " + status.getCode() + (status.getDescription() == null ? "" : ": " + status.getDescription());
    }

    /** Observes one call: stamps token-carrying messages, completes {@link #done} at the end. */
    private static final class GenerateStream implements ClientResponseObserver<GenerateRequest, GenerateResponse> {
        final RequestTimeline timeline;
        final CompletableFuture<Void> done = new CompletableFuture<>();
        private volatile ClientCallStreamObserver<GenerateRequest> call;

        GenerateStream(RequestTimeline timeline) {
            this.timeline = timeline;
        }

        @Override
        public void beforeStart(ClientCallStreamObserver<GenerateRequest> requestStream) {
            this.call = requestStream;
        }

        @Override
        public void onNext(GenerateResponse response) {
            long now = System.nanoTime();
            if (response.getTokenIdsCount() > 0) {
                timeline.onTokens(now, response.getTokenIdsCount());
            }
            if (response.hasUsage()) {
                timeline.onUsage(response.getUsage().getPromptTokens(), response.getUsage().getCompletionTokens());
            }
        }

        @Override
        public void onError(Throwable error) {
            done.completeExceptionally(error);
        }

        @Override
        public void onCompleted() {
            done.complete(null);
        }

        void cancel(String why) {
            ClientCallStreamObserver<GenerateRequest> c = call;
            if (c != null) {
                c.cancel(why, null);
            }
        }
    }
}
