package io.tandem.decode;

import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.tandem.control.DecodeMessages;
import io.tandem.control.LoadReports;
import io.tandem.control.WorkerStatuses;
import io.tandem.engine.DecodeEngine;
import io.tandem.engine.DecodeRequest;
import io.tandem.engine.model.ModelConfig;
import io.tandem.proto.v1.DecodeResponse;
import io.tandem.proto.v1.DecodeWorkerGrpc;
import io.tandem.proto.v1.LoadReport;
import io.tandem.proto.v1.LoadRequest;
import io.tandem.proto.v1.WorkerRole;

/**
 * {@code tandem.v1.DecodeWorker} over a {@link DecodeEngine}: a request is checked against the
 * model, its handle's data-plane address is recorded in the {@link KvSourceDirectory}, and the
 * sequence goes to the engine's queue (full → {@code RESOURCE_EXHAUSTED}); tokens stream back
 * through a {@link DecodeResponseWriter}. The client's cancellation or deadline ends the sequence.
 *
 * <p>A handle that reaches this worker is this worker's to release, and its lease is renewed
 * ({@link LeaseRenewingTransport}) until then: the engine releases it once its pages are pulled or
 * the sequence ends; a request refused here has it released at once, so the prefill worker does
 * not keep the blocks until the lease expires. A queued request's first message goes out at once,
 * with or without a token: it tells the router that this worker owns the handle (a call that ends
 * before any message leaves the handle to the router to release).
 */
public final class DecodeWorkerService extends DecodeWorkerGrpc.DecodeWorkerImplBase {
    private final String workerId;
    private final long epoch;
    private final DecodeEngine engine;
    private final ModelConfig model;
    private final LeaseRenewingTransport transport;
    private final KvSourceDirectory directory;

    /**
     * @param epoch     this worker's start epoch, reported with its load
     * @param model     the served model's limits (vocabulary, context length)
     * @param transport the engine's transport: renews the leases of accepted handles, releases
     *                  those of refused requests
     * @param directory where handles' data-plane addresses are recorded for the transport
     */
    DecodeWorkerService(String workerId, long epoch, DecodeEngine engine, ModelConfig model,
                        LeaseRenewingTransport transport, KvSourceDirectory directory) {
        this.workerId = workerId;
        this.epoch = epoch;
        this.engine = engine;
        this.model = model;
        this.transport = transport;
        this.directory = directory;
    }

    @Override
    public void decode(io.tandem.proto.v1.DecodeRequest message, StreamObserver<DecodeResponse> responseObserver) {
        ServerCallStreamObserver<DecodeResponse> observer = (ServerCallStreamObserver<DecodeResponse>) responseObserver;
        DecodeRequest request;
        try {
            request = DecodeMessages.fromProto(message, model);
        } catch (RuntimeException e) {
            observer.onError(WorkerStatuses.toStatus(e).asRuntimeException());
            return;
        }
        try {
            directory.learn(request.kvHandle().workerId(), message.getKvHandle().getKvAddress());
        } catch (RuntimeException e) {
            transport.release(request.kvHandle());
            observer.onError(WorkerStatuses.toStatus(e).asRuntimeException());
            return;
        }
        DecodeResponseWriter writer = new DecodeResponseWriter(observer);
        // Both handlers must be set before this method returns.
        observer.setOnReadyHandler(writer::drain);
        observer.setOnCancelHandler(() -> engine.cancel(request.requestId()));
        // Before the engine sees it: the engine's release (even an immediate one) ends the renewals.
        transport.hold(request.kvHandle());
        if (!engine.submit(request, writer)) {
            transport.release(request.kvHandle());
            observer.onError(Status.RESOURCE_EXHAUSTED
                    .withDescription("decode worker " + workerId + ": engine queue is full").asRuntimeException());
            return;
        }
        writer.accepted();
        if (observer.isCancelled()) {
            engine.cancel(request.requestId()); // the cancel handler ran before the sequence was queued
        }
    }

    @Override
    public void getLoad(LoadRequest request, StreamObserver<LoadReport> observer) {
        observer.onNext(LoadReports.toProto(workerId, epoch, WorkerRole.WORKER_ROLE_DECODE, engine.stats()));
        observer.onCompleted();
    }
}
