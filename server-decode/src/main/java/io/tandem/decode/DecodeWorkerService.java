package io.tandem.decode;

import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.tandem.control.DecodeMessages;
import io.tandem.control.KvHandleMessages;
import io.tandem.control.LoadReports;
import io.tandem.control.WorkerStatuses;
import io.tandem.engine.DecodeEngine;
import io.tandem.engine.DecodeRequest;
import io.tandem.engine.model.ModelConfig;
import io.tandem.kvcache.PageSummaries;
import io.tandem.proto.v1.DecodeInput;
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
        DecodeResponseWriter writer = new DecodeResponseWriter(observer);
        // Both handlers must be set before this method returns.
        observer.setOnReadyHandler(writer::drain);
        observer.setOnCancelHandler(() -> engine.cancel(request.requestId()));
        start(request, message.getKvHandle().getKvAddress(), observer, writer);
    }

    /**
     * {@code Decode} on an early handle: the request (first message) starts the sequence and its
     * pull at once; the page summaries (optional, checked against the request's handle) go to the
     * engine with the first token (last message), which lets it run once its pages are in. The
     * client's cancellation, or its stream failing, ends the sequence; a first token that is not
     * one ends it with {@code INVALID_ARGUMENT}.
     */
    @Override
    public StreamObserver<DecodeInput> decodeFromEarlyHandle(StreamObserver<DecodeResponse> responseObserver) {
        ServerCallStreamObserver<DecodeResponse> observer = (ServerCallStreamObserver<DecodeResponse>) responseObserver;
        DecodeResponseWriter writer = new DecodeResponseWriter(observer);
        EarlyHandleInput input = new EarlyHandleInput(observer, writer);
        // Both handlers must be set before this method returns.
        observer.setOnReadyHandler(writer::drain);
        observer.setOnCancelHandler(input::cancel);
        return input;
    }

    /**
     * Records the handle's address and queues the sequence; a request refused here has its handle
     * released. Returns whether the engine took it.
     */
    private boolean start(DecodeRequest request, String kvAddress, ServerCallStreamObserver<DecodeResponse> observer,
                          DecodeResponseWriter writer) {
        try {
            directory.learn(request.kvHandle().workerId(), kvAddress);
        } catch (RuntimeException e) {
            transport.release(request.kvHandle());
            observer.onError(WorkerStatuses.toStatus(e).asRuntimeException());
            return false;
        }
        // Before the engine sees it: the engine's release (even an immediate one) ends the renewals.
        transport.hold(request.kvHandle());
        if (!engine.submit(request, writer)) {
            transport.release(request.kvHandle());
            observer.onError(Status.RESOURCE_EXHAUSTED
                    .withDescription("decode worker " + workerId + ": engine queue is full").asRuntimeException());
            return false;
        }
        writer.accepted();
        if (observer.isCancelled()) {
            engine.cancel(request.requestId()); // the cancel handler ran before the sequence was queued
        }
        return true;
    }

    /** The input side of one {@code DecodeFromEarlyHandle} call; gRPC calls it one message at a time. */
    private final class EarlyHandleInput implements StreamObserver<DecodeInput> {
        private final ServerCallStreamObserver<DecodeResponse> observer;
        private final DecodeResponseWriter writer;
        /** Set once the engine took the request (read by the cancel handler on another thread). */
        private volatile String requestId;
        /** The request the engine took; its handle is what page summaries are checked against. */
        private DecodeRequest request;
        private PageSummaries pageSummaries;
        private boolean requestSeen;
        private boolean failed;

        EarlyHandleInput(ServerCallStreamObserver<DecodeResponse> observer, DecodeResponseWriter writer) {
            this.observer = observer;
            this.writer = writer;
        }

        @Override
        public void onNext(DecodeInput input) {
            if (failed) {
                return;
            }
            switch (input.getInputCase()) {
                case REQUEST -> onRequest(input.getRequest());
                case PAGE_SUMMARIES -> onPageSummaries(input.getPageSummaries());
                case FIRST_TOKEN -> onFirstToken(input.getFirstToken());
                case INPUT_NOT_SET -> fail(Status.INVALID_ARGUMENT.withDescription(
                        "DecodeInput with neither request, page_summaries nor first_token"));
            }
        }

        private void onRequest(io.tandem.proto.v1.DecodeRequest message) {
            if (requestSeen) {
                fail(Status.INVALID_ARGUMENT.withDescription("request: sent twice in one DecodeFromEarlyHandle call"));
                return;
            }
            requestSeen = true;
            DecodeRequest request;
            try {
                request = DecodeMessages.fromEarlyHandleProto(message, model);
            } catch (RuntimeException e) {
                failed = true;
                observer.onError(WorkerStatuses.toStatus(e).asRuntimeException());
                return;
            }
            if (start(request, message.getKvHandle().getKvAddress(), observer, writer)) {
                this.request = request;
                requestId = request.requestId();
            } else {
                failed = true;
            }
        }

        private void onPageSummaries(io.tandem.proto.v1.KvPageSummaries message) {
            if (request == null) {
                fail(Status.INVALID_ARGUMENT.withDescription("page_summaries: sent before the request"));
                return;
            }
            if (pageSummaries != null) {
                fail(Status.INVALID_ARGUMENT.withDescription("page_summaries: sent twice in one DecodeFromEarlyHandle call"));
                return;
            }
            try {
                pageSummaries = KvHandleMessages.fromProto(message, request.kvHandle(), "page_summaries");
            } catch (RuntimeException e) {
                fail(WorkerStatuses.toStatus(e));
            }
        }

        private void onFirstToken(int token) {
            String id = requestId;
            if (id == null) {
                fail(Status.INVALID_ARGUMENT.withDescription("first_token: sent before the request"));
                return;
            }
            try {
                DecodeMessages.checkFirstToken(token, model);
            } catch (RuntimeException e) {
                fail(WorkerStatuses.toStatus(e));
                return;
            }
            if (!engine.provideFirstToken(id, token, pageSummaries)) {
                fail(Status.RESOURCE_EXHAUSTED.withDescription("decode worker " + workerId
                        + ": engine queue is full; the first token of " + id + " was not taken"));
            }
        }

        /** Ends the call with {@code status} and the sequence, if one was started (the engine releases its handle). */
        private void fail(Status status) {
            failed = true;
            cancel();
            writer.onError(status.asRuntimeException());
        }

        void cancel() {
            String id = requestId;
            if (id != null) {
                engine.cancel(id);
            }
        }

        @Override
        public void onError(Throwable t) {
            cancel(); // the client's side of the call ended: cancelled, deadline, connection lost
        }

        @Override
        public void onCompleted() {
            // The client half-closes after the first token; the response stream goes on.
        }
    }

    @Override
    public void getLoad(LoadRequest request, StreamObserver<LoadReport> observer) {
        observer.onNext(LoadReports.toProto(workerId, epoch, WorkerRole.WORKER_ROLE_DECODE, engine.stats()));
        observer.onCompleted();
    }
}
