package io.tandem.router.worker;

import io.grpc.Status;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.tandem.control.DecodeMessages;
import io.tandem.control.HostPort;
import io.tandem.control.KvHandleMessages;
import io.tandem.control.HealthCheckedGrpcServer;
import io.tandem.engine.DecodeRequest;
import io.tandem.engine.FinishReason;
import io.tandem.engine.TokenSink;
import io.tandem.kvcache.PageSummaries;
import io.tandem.proto.v1.DecodeInput;
import io.tandem.proto.v1.DecodeResponse;
import io.tandem.proto.v1.DecodeWorkerGrpc;
import io.tandem.proto.v1.LoadRequest;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledExecutorService;

/**
 * A {@code tandem decode} process reached over gRPC: each {@link #decode} is a server-streaming
 * {@code Decode} call whose messages feed the sink, on a gRPC thread. The call has a deadline and,
 * started inside a gRPC server call, inherits that call's deadline and cancellation. The request's
 * handle goes with the KV address its prefill worker advertised ({@link KvAddressBook}); once the
 * decode worker has accepted it (its first message, sent at once, may carry no token), releasing it
 * is the decode worker's job; a call that ends before that runs the caller's {@code notAccepted}
 * first. Cancelling the call ends the sequence there; the sink gets {@code onFinish(ABORT)}, as
 * from the in-process engine.
 *
 * <p>A request whose first token is still pending ({@link DecodeRequest#FIRST_TOKEN_PENDING}, an
 * early handle) goes as {@code DecodeFromEarlyHandle}: the request now, the token (after the page
 * summaries, if the prefill's result has them) later through {@link #provideFirstToken}, which also
 * half-closes the call.
 *
 * <p>A request's handle carries its page summaries (up to {@link io.tandem.kvcache.PageSummaries#MAX_BYTES}), which
 * the worker's server accepts ({@link HealthCheckedGrpcServer#MAX_MESSAGE_BYTES}); so do the inputs of an early-handle call.
 */
public final class GrpcDecodeWorkerClient extends GrpcWorkerChannel implements DecodeWorkerClient {
    private final DecodeWorkerGrpc.DecodeWorkerStub stub;
    private final KvAddressBook addresses;
    private final Duration decodeTimeout;
    private final Map<String, Call> inFlight = new ConcurrentHashMap<>();

    /**
     * Opens a channel to the worker and starts polling it.
     *
     * @param addresses     KV addresses of prefill workers, sent along with their handles
     * @param scheduler     runs the load polls (shared by a router's clients; owned by the caller)
     * @param decodeTimeout deadline of each {@code Decode} call (the whole generation)
     */
    public GrpcDecodeWorkerClient(HostPort target, KvAddressBook addresses, ScheduledExecutorService scheduler,
                                  Duration decodeTimeout) {
        super(target, DecodeWorkerGrpc.SERVICE_NAME, channel -> {
            DecodeWorkerGrpc.DecodeWorkerFutureStub futures = DecodeWorkerGrpc.newFutureStub(channel);
            return deadline -> futures.withDeadlineAfter(deadline).getLoad(LoadRequest.getDefaultInstance());
        }, scheduler);
        this.stub = DecodeWorkerGrpc.newStub(channel);
        this.addresses = addresses;
        this.decodeTimeout = decodeTimeout;
    }

    @Override
    public boolean decode(DecodeRequest request, TokenSink sink, Runnable notAccepted) {
        if (isClosed()) {
            return false;
        }
        Call call = new Call(request.requestId(), sink, notAccepted);
        inFlight.put(request.requestId(), call);
        String kvAddress = addresses.address(request.kvHandle().workerId());
        if (request.firstTokenPending()) {
            call.startWithEarlyHandle(stub.withDeadlineAfter(decodeTimeout), DecodeMessages.toProto(request, kvAddress));
        } else {
            stub.withDeadlineAfter(decodeTimeout).decode(DecodeMessages.toProto(request, kvAddress), call);
        }
        return true;
    }

    @Override
    public void provideFirstToken(String requestId, int token, PageSummaries pageSummaries) {
        Call call = inFlight.get(requestId);
        if (call != null) {
            call.sendFirstToken(token, pageSummaries);
        }
    }

    @Override
    public void cancel(String requestId) {
        Call call = inFlight.get(requestId);
        if (call != null) {
            call.cancel();
        }
    }

    /** One {@code Decode} stream; gRPC calls its methods one at a time. */
    private final class Call implements ClientResponseObserver<io.tandem.proto.v1.DecodeRequest, DecodeResponse> {
        private final String requestId;
        private final TokenSink sink;
        private final Runnable notAccepted;
        private volatile ClientCallStreamObserver<io.tandem.proto.v1.DecodeRequest> requestStream;
        /** The input side of a {@code DecodeFromEarlyHandle} call; null for {@code Decode}. Guarded by {@code this}. */
        private io.grpc.stub.StreamObserver<DecodeInput> inputs;
        private boolean halfClosed;
        /** A message arrived: the worker accepted the request and owns its handle. */
        private boolean accepted;
        private FinishReason finishReason;

        Call(String requestId, TokenSink sink, Runnable notAccepted) {
            this.requestId = requestId;
            this.sink = sink;
            this.notAccepted = notAccepted;
        }

        @Override
        public void beforeStart(ClientCallStreamObserver<io.tandem.proto.v1.DecodeRequest> stream) {
            requestStream = stream;
        }

        /** Opens a {@code DecodeFromEarlyHandle} call whose responses come here, and sends the request. */
        synchronized void startWithEarlyHandle(DecodeWorkerGrpc.DecodeWorkerStub stub, io.tandem.proto.v1.DecodeRequest request) {
            inputs = stub.decodeFromEarlyHandle(new EarlyHandleResponses(this));
            inputs.onNext(DecodeInput.newBuilder().setRequest(request).build());
        }

        /** Sends the page summaries (if any), the first token and half-closes; at most once, and not after the call ended. */
        synchronized void sendFirstToken(int token, PageSummaries pageSummaries) {
            if (inputs == null || halfClosed) {
                return;
            }
            halfClosed = true;
            if (pageSummaries != null) {
                inputs.onNext(DecodeInput.newBuilder().setPageSummaries(KvHandleMessages.toProto(pageSummaries)).build());
            }
            inputs.onNext(DecodeInput.newBuilder().setFirstToken(token).build());
            inputs.onCompleted();
        }

        void cancel() {
            ClientCallStreamObserver<?> stream = requestStream;
            if (stream == null) {
                synchronized (this) {
                    stream = earlyStream;
                }
            }
            if (stream != null) {
                stream.cancel("cancelled by the router", null);
            }
        }

        /** The request side of the early-handle call, for cancelling it. Guarded by {@code this}. */
        private ClientCallStreamObserver<DecodeInput> earlyStream;

        @Override
        public void onNext(DecodeResponse response) {
            accepted = true;
            for (int i = 0; i < response.getTokenIdsCount(); i++) {
                sink.onToken(response.getTokenIds(i));
            }
            finishReason = switch (response.getFinishReason()) {
                case FINISH_REASON_UNSPECIFIED, UNRECOGNIZED -> null;
                case FINISH_REASON_STOP -> FinishReason.STOP;
                case FINISH_REASON_LENGTH -> FinishReason.LENGTH;
                case FINISH_REASON_ABORT -> FinishReason.ABORT;
            };
        }

        @Override
        public void onError(Throwable error) {
            inFlight.remove(requestId, this);
            handBackIfNotAccepted();
            if (Status.fromThrowable(error).getCode() == Status.Code.CANCELLED) {
                sink.onFinish(FinishReason.ABORT);
            } else {
                sink.onError(WorkerStatusErrors.toException(workerId(), error));
            }
        }

        @Override
        public void onCompleted() {
            inFlight.remove(requestId, this);
            handBackIfNotAccepted();
            if (finishReason == null) {
                sink.onError(new WorkerCallException(workerId(), Status.INTERNAL
                        .withDescription("the Decode stream of " + requestId + " ended without a finish reason")));
            } else {
                sink.onFinish(finishReason);
            }
        }

        /**
         * The call ended without a message: the worker never took the request, or refused it. A
         * worker that refused it may have released the handle already; releases are idempotent.
         */
        private void handBackIfNotAccepted() {
            if (!accepted) {
                notAccepted.run();
            }
        }
    }

    /** Responses of a {@code DecodeFromEarlyHandle} call, handed to its {@link Call}. */
    private static final class EarlyHandleResponses implements ClientResponseObserver<DecodeInput, DecodeResponse> {
        private final Call call;

        EarlyHandleResponses(Call call) {
            this.call = call;
        }

        @Override
        public void beforeStart(ClientCallStreamObserver<DecodeInput> stream) {
            synchronized (call) {
                call.earlyStream = stream;
            }
        }

        @Override
        public void onNext(DecodeResponse response) {
            call.onNext(response);
        }

        @Override
        public void onError(Throwable error) {
            synchronized (call) {
                call.halfClosed = true; // nothing more may be sent on a call that ended
            }
            call.onError(error);
        }

        @Override
        public void onCompleted() {
            synchronized (call) {
                call.halfClosed = true;
            }
            call.onCompleted();
        }
    }
}
