package io.tandem.prefill;

import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.tandem.control.LoadReports;
import io.tandem.control.PrefillMessages;
import io.tandem.control.WorkerStatuses;
import io.tandem.engine.PrefillEngine;
import io.tandem.engine.PrefillRequest;
import io.tandem.engine.model.ModelConfig;
import io.tandem.proto.v1.LoadReport;
import io.tandem.proto.v1.LoadRequest;
import io.tandem.proto.v1.PrefillEvent;
import io.tandem.proto.v1.PrefillResponse;
import io.tandem.proto.v1.PrefillWorkerGrpc;
import io.tandem.proto.v1.ReleaseRequest;
import io.tandem.proto.v1.ReleaseResponse;
import io.tandem.proto.v1.RenewRequest;
import io.tandem.proto.v1.RenewResponse;
import io.tandem.proto.v1.WorkerRole;

/**
 * {@code tandem.v1.PrefillWorker} over a {@link PrefillEngine}: requests are checked against the
 * model and handed to the engine's queue (full → {@code RESOURCE_EXHAUSTED}); a prefill's result
 * is sent when the engine's callback fires ({@link PrefillCall}), with this worker's KV data-plane
 * address in the handle. Lease calls name the worker and its epoch; another worker's or an earlier
 * epoch's handle gets {@code FAILED_PRECONDITION}. No method blocks: the engine answers on its
 * thread.
 */
public final class PrefillWorkerService extends PrefillWorkerGrpc.PrefillWorkerImplBase {
    private final PrefillEngine engine;
    private final ModelConfig model;
    private final String kvAddress;

    /**
     * @param model     the served model's limits (vocabulary, context length)
     * @param kvAddress {@code host:port} of this worker's KV data plane, put in every handle
     */
    public PrefillWorkerService(PrefillEngine engine, ModelConfig model, String kvAddress) {
        this.engine = engine;
        this.model = model;
        this.kvAddress = kvAddress;
    }

    @Override
    public void prefill(io.tandem.proto.v1.PrefillRequest message, StreamObserver<PrefillResponse> responseObserver) {
        ServerCallStreamObserver<PrefillResponse> observer = (ServerCallStreamObserver<PrefillResponse>) responseObserver;
        PrefillRequest request;
        try {
            request = PrefillMessages.fromProto(message, model);
        } catch (RuntimeException e) {
            observer.onError(WorkerStatuses.toStatus(e).asRuntimeException());
            return;
        }
        PrefillCall call = new PrefillCall(engine, request.requestId(), observer, kvAddress);
        observer.setOnCancelHandler(call::onCancel);
        if (!engine.submit(request, call)) {
            observer.onError(Status.RESOURCE_EXHAUSTED
                    .withDescription("prefill worker " + engine.workerId() + ": engine queue is full").asRuntimeException());
        }
    }

    /** {@link #prefill}, the handle sent first, as soon as the engine has allocated its blocks ({@link EarlyHandlePrefillCall}). */
    @Override
    public void prefillWithEarlyHandle(io.tandem.proto.v1.PrefillRequest message,
                                       StreamObserver<PrefillEvent> responseObserver) {
        ServerCallStreamObserver<PrefillEvent> observer = (ServerCallStreamObserver<PrefillEvent>) responseObserver;
        PrefillRequest request;
        try {
            request = PrefillMessages.fromProto(message, model).withEarlyHandle(true);
        } catch (RuntimeException e) {
            observer.onError(WorkerStatuses.toStatus(e).asRuntimeException());
            return;
        }
        EarlyHandlePrefillCall call = new EarlyHandlePrefillCall(engine, request.requestId(), observer, kvAddress);
        observer.setOnCancelHandler(call::onCancel);
        if (!engine.submit(request, call)) {
            observer.onError(Status.RESOURCE_EXHAUSTED
                    .withDescription("prefill worker " + engine.workerId() + ": engine queue is full").asRuntimeException());
        }
    }

    @Override
    public void release(ReleaseRequest request, StreamObserver<ReleaseResponse> observer) {
        Status stale = checkOwner(request.getWorkerId(), request.getEpoch());
        if (stale != null) {
            observer.onError(stale.asRuntimeException());
        } else if (!engine.release(request.getLeaseId())) {
            observer.onError(Status.RESOURCE_EXHAUSTED.withDescription("prefill worker " + engine.workerId()
                    + ": engine queue is full; lease " + request.getLeaseId() + " is freed when it expires").asRuntimeException());
        } else {
            observer.onNext(ReleaseResponse.getDefaultInstance());
            observer.onCompleted();
        }
    }

    @Override
    public void renew(RenewRequest request, StreamObserver<RenewResponse> observer) {
        Status stale = checkOwner(request.getWorkerId(), request.getEpoch());
        if (stale != null) {
            observer.onError(stale.asRuntimeException());
            return;
        }
        long leaseId = request.getLeaseId();
        boolean queued = engine.renew(leaseId, held -> {
            if (held) {
                observer.onNext(RenewResponse.getDefaultInstance());
                observer.onCompleted();
            } else {
                observer.onError(Status.FAILED_PRECONDITION.withDescription("prefill worker " + engine.workerId()
                        + " holds no lease " + leaseId + " (released or expired)").asRuntimeException());
            }
        });
        if (!queued) {
            observer.onError(Status.RESOURCE_EXHAUSTED
                    .withDescription("prefill worker " + engine.workerId() + ": engine queue is full").asRuntimeException());
        }
    }

    @Override
    public void getLoad(LoadRequest request, StreamObserver<LoadReport> observer) {
        observer.onNext(LoadReports.toProto(engine.workerId(), engine.epoch(), WorkerRole.WORKER_ROLE_PREFILL, engine.stats()));
        observer.onCompleted();
    }

    /** {@code null} if a lease call names this worker and epoch, else why not. */
    private Status checkOwner(String workerId, long epoch) {
        if (!workerId.equals(engine.workerId())) {
            return Status.FAILED_PRECONDITION.withDescription("lease of worker '" + workerId + "' sent to prefill worker "
                    + engine.workerId());
        }
        if (epoch != engine.epoch()) {
            return Status.FAILED_PRECONDITION.withDescription("stale epoch " + epoch + ": prefill worker " + workerId
                    + " restarted at epoch " + engine.epoch() + " and holds none of its earlier leases");
        }
        return null;
    }
}
