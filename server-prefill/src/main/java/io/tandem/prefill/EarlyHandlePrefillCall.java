package io.tandem.prefill;

import io.grpc.stub.ServerCallStreamObserver;
import io.tandem.control.KvHandleMessages;
import io.tandem.control.PrefillMessages;
import io.tandem.control.WorkerStatuses;
import io.tandem.engine.PrefillCallback;
import io.tandem.engine.PrefillEngine;
import io.tandem.engine.PrefillResult;
import io.tandem.kvcache.KvHandle;
import io.tandem.proto.v1.PrefillEvent;

/**
 * One {@code PrefillWithEarlyHandle} call: the handle goes out as the first message when the
 * engine allocates the prompt's blocks, the result as the last; both from the engine thread
 * (gRPC queues the messages; two per call, so nothing builds up). The client's cancellation (a
 * gRPC thread) before the result cancels the prefill, which ends the lease and the pulls waiting
 * for its pages; after the result the handle is whoever's it was given to (the router passes it to
 * a decode worker as soon as it arrives), so nothing is released here.
 */
final class EarlyHandlePrefillCall implements PrefillCallback {
    private final PrefillEngine engine;
    private final String requestId;
    private final ServerCallStreamObserver<PrefillEvent> observer;
    private final String kvAddress;
    private boolean cancelled;
    private boolean ended;

    EarlyHandlePrefillCall(PrefillEngine engine, String requestId, ServerCallStreamObserver<PrefillEvent> observer,
                           String kvAddress) {
        this.engine = engine;
        this.requestId = requestId;
        this.observer = observer;
        this.kvAddress = kvAddress;
    }

    @Override
    public void onKvHandle(KvHandle handle) {
        synchronized (this) {
            if (cancelled) {
                return; // the cancel command follows and ends the prefill and its lease
            }
        }
        observer.onNext(PrefillEvent.newBuilder().setKvHandle(KvHandleMessages.toProto(handle, kvAddress)).build());
    }

    @Override
    public void onPrefilled(PrefillResult result) {
        synchronized (this) {
            ended = true;
            if (cancelled) {
                return;
            }
        }
        observer.onNext(PrefillEvent.newBuilder().setResult(PrefillMessages.toProto(result, kvAddress)).build());
        observer.onCompleted();
    }

    @Override
    public void onFailed(Throwable error) {
        synchronized (this) {
            ended = true;
            if (cancelled) {
                return;
            }
        }
        observer.onError(WorkerStatuses.toStatus(error).asRuntimeException());
    }

    /** The client cancelled, its deadline passed, or the connection broke before the call ended OK. */
    void onCancel() {
        boolean prefilled;
        synchronized (this) {
            cancelled = true;
            prefilled = ended;
        }
        if (!prefilled) {
            engine.cancel(requestId);
        }
    }
}
