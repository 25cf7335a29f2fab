package io.tandem.router.worker;

import com.google.common.util.concurrent.FutureCallback;
import com.google.common.util.concurrent.Futures;
import com.google.common.util.concurrent.MoreExecutors;
import io.grpc.Context;
import io.grpc.Status;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.tandem.control.HostPort;
import io.tandem.control.PrefillMessages;
import io.tandem.engine.PrefillCallback;
import io.tandem.engine.PrefillRequest;
import io.tandem.engine.PrefillResult;
import io.tandem.kvcache.KvHandle;
import io.tandem.proto.v1.LoadRequest;
import io.tandem.control.KvHandleMessages;
import io.tandem.proto.v1.PrefillEvent;
import io.tandem.proto.v1.PrefillResponse;
import io.tandem.proto.v1.PrefillWorkerGrpc;
import io.tandem.proto.v1.ReleaseRequest;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledExecutorService;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A {@code tandem prefill} process reached over gRPC (async stubs; nothing blocks the caller).
 * Each {@code Prefill} call has a deadline; a call started inside a gRPC server call (the public
 * API) also inherits that call's deadline and cancellation, through grpc's {@code Context}. The
 * worker's load and health are polled in the background ({@link LoadMonitor}).
 *
 * <p>A result is delivered only once the call has ended OK, never on the message alone: a call
 * that is cancelled after the worker answered but before its status arrived ends CANCELLED here,
 * and the worker, which saw the cancel, releases the lease itself; no handle is ever used after
 * its owner gave it up. (If the worker's OK and our cancel cross, neither side has the handle and
 * the lease expires.)
 *
 * <p>A request with {@link PrefillRequest#earlyHandle()} goes as {@code PrefillWithEarlyHandle}: the
 * handle is delivered ({@link PrefillCallback#onKvHandle}) as soon as its message arrives, since its
 * point is to let a decode worker pull while the prefill computes; the result only once the call
 * has ended OK, as above.
 */
public final class GrpcPrefillWorkerClient extends GrpcWorkerChannel implements PrefillWorkerClient {
    private static final Logger LOG = LoggerFactory.getLogger(GrpcPrefillWorkerClient.class);
    private static final Duration RELEASE_TIMEOUT = Duration.ofSeconds(5);

    private final PrefillWorkerGrpc.PrefillWorkerStub stub;
    private final KvAddressBook addresses;
    private final Duration prefillTimeout;
    private final Map<String, Cancellable> inFlight = new ConcurrentHashMap<>();

    /**
     * Opens a channel to the worker and starts polling it.
     *
     * @param addresses      where the KV addresses of returned handles are recorded
     * @param scheduler      runs the load polls (shared by a router's clients; owned by the caller)
     * @param prefillTimeout deadline of each {@code Prefill} call
     */
    public GrpcPrefillWorkerClient(HostPort target, KvAddressBook addresses, ScheduledExecutorService scheduler,
                                   Duration prefillTimeout) {
        super(target, PrefillWorkerGrpc.SERVICE_NAME, channel -> {
            PrefillWorkerGrpc.PrefillWorkerFutureStub futures = PrefillWorkerGrpc.newFutureStub(channel);
            return deadline -> futures.withDeadlineAfter(deadline).getLoad(LoadRequest.getDefaultInstance());
        }, scheduler);
        this.stub = PrefillWorkerGrpc.newStub(channel);
        this.addresses = addresses;
        this.prefillTimeout = prefillTimeout;
    }

    @Override
    public boolean prefill(PrefillRequest request, PrefillCallback callback) {
        if (isClosed()) {
            return false;
        }
        if (request.earlyHandle()) {
            EarlyHandleCall call = new EarlyHandleCall(request.requestId(), callback);
            inFlight.put(request.requestId(), call);
            stub.withDeadlineAfter(prefillTimeout).prefillWithEarlyHandle(PrefillMessages.toProto(request), call);
            return true;
        }
        Call call = new Call(request.requestId(), callback);
        inFlight.put(request.requestId(), call);
        stub.withDeadlineAfter(prefillTimeout).prefill(PrefillMessages.toProto(request), call);
        return true;
    }

    @Override
    public void cancel(String requestId) {
        Cancellable call = inFlight.get(requestId);
        if (call != null) {
            call.cancel();
        }
    }

    /** Sends {@code Release}; a failure is logged and left to the lease's expiry. */
    @Override
    public void release(KvHandle handle) {
        if (isClosed()) {
            return;
        }
        ReleaseRequest request = ReleaseRequest.newBuilder().setWorkerId(handle.workerId()).setEpoch(handle.epoch())
                .setLeaseId(handle.leaseId()).build();
        // A fork: a release made while a cancelled call's context is current (a request whose
        // client went away) must not be cancelled with it.
        Context.current().fork().run(() -> sendRelease(handle, request));
    }

    private void sendRelease(KvHandle handle, ReleaseRequest request) {
        Futures.addCallback(PrefillWorkerGrpc.newFutureStub(channel).withDeadlineAfter(RELEASE_TIMEOUT).release(request),
                new FutureCallback<>() {
                    @Override
                    public void onSuccess(io.tandem.proto.v1.ReleaseResponse response) {}

                    @Override
                    public void onFailure(Throwable error) {
                        LOG.warn("release of lease {} on {} failed ({}); it is freed when it expires", handle.leaseId(),
                                target, Status.fromThrowable(error));
                    }
                }, MoreExecutors.directExecutor());
    }

    /** A call in flight, which the router may cancel. */
    private interface Cancellable {
        void cancel();
    }

    /** A prefill call of either kind: its request, the router's callback and the cancel. */
    private abstract static class PrefillCall<R>
            implements ClientResponseObserver<io.tandem.proto.v1.PrefillRequest, R>, Cancellable {
        final String requestId;
        final PrefillCallback callback;
        private volatile ClientCallStreamObserver<io.tandem.proto.v1.PrefillRequest> requestStream;

        PrefillCall(String requestId, PrefillCallback callback) {
            this.requestId = requestId;
            this.callback = callback;
        }

        @Override
        public void beforeStart(ClientCallStreamObserver<io.tandem.proto.v1.PrefillRequest> stream) {
            requestStream = stream;
        }

        @Override
        public void cancel() {
            ClientCallStreamObserver<io.tandem.proto.v1.PrefillRequest> stream = requestStream;
            if (stream != null) {
                stream.cancel("cancelled by the router", null);
            }
        }
    }

    /** One {@code Prefill} call; gRPC calls its methods one at a time. */
    private final class Call extends PrefillCall<PrefillResponse> {
        private PrefillResponse response;

        Call(String requestId, PrefillCallback callback) {
            super(requestId, callback);
        }

        @Override
        public void onNext(PrefillResponse value) {
            response = value;
        }

        @Override
        public void onError(Throwable error) {
            inFlight.remove(requestId, this);
            callback.onFailed(WorkerStatusErrors.toException(workerId(), error));
        }

        @Override
        public void onCompleted() {
            inFlight.remove(requestId, this);
            PrefillResult result;
            try {
                result = PrefillMessages.fromProto(response);
            } catch (RuntimeException e) {
                callback.onFailed(new WorkerCallException(workerId(), Status.INTERNAL
                        .withDescription("unusable Prefill response: " + e.getMessage())));
                return;
            }
            addresses.learn(result.kvHandle().workerId(), response.getKvHandle().getKvAddress());
            callback.onPrefilled(result);
        }
    }

    /** One {@code PrefillWithEarlyHandle} call; gRPC calls its methods one at a time. */
    private final class EarlyHandleCall extends PrefillCall<PrefillEvent> {
        private KvHandle handle;
        private PrefillResponse response;
        /** The message broke the protocol; the call is cancelled and the callback already told. */
        private boolean broken;

        EarlyHandleCall(String requestId, PrefillCallback callback) {
            super(requestId, callback);
        }

        @Override
        public void onNext(PrefillEvent event) {
            if (broken) {
                return;
            }
            switch (event.getEventCase()) {
                case KV_HANDLE -> {
                    if (handle != null) {
                        breakCall("a second kv_handle");
                        return;
                    }
                    try {
                        handle = KvHandleMessages.fromProto(event.getKvHandle());
                    } catch (RuntimeException e) {
                        breakCall("unusable kv_handle: " + e.getMessage());
                        return;
                    }
                    addresses.learn(handle.workerId(), event.getKvHandle().getKvAddress());
                    callback.onKvHandle(handle);
                }
                case RESULT -> response = event.getResult();
                case EVENT_NOT_SET -> breakCall("an empty PrefillEvent");
            }
        }

        /** The worker broke the protocol: cancel the call (the worker ends the prefill) and fail the request. */
        private void breakCall(String what) {
            broken = true;
            inFlight.remove(requestId, this);
            cancel();
            callback.onFailed(new WorkerCallException(workerId(), Status.INTERNAL
                    .withDescription("PrefillWithEarlyHandle of " + requestId + " sent " + what)));
        }

        @Override
        public void onError(Throwable error) {
            if (broken) {
                return;
            }
            inFlight.remove(requestId, this);
            callback.onFailed(WorkerStatusErrors.toException(workerId(), error));
        }

        @Override
        public void onCompleted() {
            if (broken) {
                return;
            }
            inFlight.remove(requestId, this);
            PrefillResult result;
            try {
                if (handle == null || response == null) {
                    throw new IllegalStateException("the call ended without " + (handle == null ? "kv_handle" : "result"));
                }
                result = PrefillMessages.fromProto(response);
                if (result.kvHandle().leaseId() != handle.leaseId() || result.kvHandle().epoch() != handle.epoch()) {
                    throw new IllegalStateException("the result's kv_handle differs from the early one");
                }
            } catch (RuntimeException e) {
                callback.onFailed(new WorkerCallException(workerId(), Status.INTERNAL
                        .withDescription("unusable PrefillWithEarlyHandle response: " + e.getMessage())));
                return;
            }
            callback.onPrefilled(result);
        }
    }
}
