package io.tandem.router.grpc;

import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.tandem.proto.v1.GenerateRequest;
import io.tandem.proto.v1.GenerateResponse;
import io.tandem.proto.v1.GenerationGrpc;
import io.tandem.proto.v1.ListModelsRequest;
import io.tandem.proto.v1.ListModelsResponse;
import io.tandem.router.CompletionRequest;
import io.tandem.router.GenerationService;
import io.tandem.router.GenerationStream;
import io.tandem.router.ModelCard;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The public gRPC API {@code tandem.v1.Generation} over a {@link GenerationService}: translates
 * requests ({@link GenerateRequests}), streams output with flow control
 * ({@link GenerateResponseWriter}), maps errors to statuses ({@link GrpcStatuses}) and turns a
 * client's cancellation or deadline into {@link GenerationStream#cancel()}.
 */
public final class GenerationGrpcService extends GenerationGrpc.GenerationImplBase {

    private final GenerationService service;

    public GenerationGrpcService(GenerationService service) {
        this.service = service;
    }

    @Override
    public void generate(GenerateRequest request, StreamObserver<GenerateResponse> responseObserver) {
        ServerCallStreamObserver<GenerateResponse> observer = (ServerCallStreamObserver<GenerateResponse>) responseObserver;
        AtomicReference<GenerationStream> stream = new AtomicReference<>();
        // Both handlers must be set before this method returns.
        observer.setOnCancelHandler(() -> {
            GenerationStream running = stream.get();
            if (running != null) {
                running.cancel();
            }
        });
        CompletionRequest completion;
        try {
            completion = GenerateRequests.toCompletionRequest(request);
        } catch (RuntimeException e) {
            observer.onError(GrpcStatuses.toStatus(e).asRuntimeException());
            return;
        }
        GenerateResponseWriter writer = new GenerateResponseWriter(observer, completion.requestId());
        observer.setOnReadyHandler(writer::drain);
        try {
            stream.set(service.generate(completion, writer));
        } catch (RuntimeException e) {
            observer.onError(GrpcStatuses.toStatus(e).asRuntimeException());
            return;
        }
        if (observer.isCancelled()) {
            stream.get().cancel(); // the client went away before the stream was known to the cancel handler
        }
    }

    @Override
    public void listModels(ListModelsRequest request, StreamObserver<ListModelsResponse> responseObserver) {
        ListModelsResponse.Builder response = ListModelsResponse.newBuilder();
        for (ModelCard card : service.listModels()) {
            response.addModels(io.tandem.proto.v1.ModelCard.newBuilder()
                    .setId(card.id())
                    .setMaxModelLen(card.maxModelLen())
                    .setOwnedBy(card.ownedBy()));
        }
        responseObserver.onNext(response.build());
        responseObserver.onCompleted();
    }
}
