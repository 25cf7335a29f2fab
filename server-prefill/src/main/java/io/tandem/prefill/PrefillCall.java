package io.tandem.prefill;

import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.tandem.control.PrefillMessages;
import io.tandem.control.WorkerStatuses;
import io.tandem.engine.PrefillCallback;
import io.tandem.engine.PrefillEngine;
import io.tandem.engine.PrefillResult;
import java.util.concurrent.CancellationException;

/**
 * One {@code Prefill} call: answers when the engine's callback fires (on the engine thread) and
 * turns the client's cancellation (on a gRPC thread) into an engine command.
 *
 * <p>Whoever comes second cleans up, so exported KV never outlives a call nobody will answer:
 * a result that arrives after the cancel has its lease released at once; a cancel that arrives
 * after the result (the response was not delivered: the call did not end OK) releases it too.
 * A cancel before any result cancels the prefill.
 */
final class PrefillCall implements PrefillCallback {
    private final PrefillEngine engine;
    private final String requestId;
    private final ServerCallStreamObserver<io.tandem.proto.v1.PrefillResponse> observer;
    private final String kvAddress;
    private PrefillResult result;
    private boolean cancelled;

    PrefillCall(PrefillEngine engine, String requestId,
                ServerCallStreamObserver<io.tandem.proto.v1.PrefillResponse> observer, String kvAddress) {
        this.engine = engine;
        this.requestId = requestId;
        this.observer = observer;
        this.kvAddress = kvAddress;
    }

    @Override
    public void onPrefilled(PrefillResult prefilled) {
        synchronized (this) {
            if (cancelled) {
                engine.release(prefilled.kvHandle().leaseId());
                return;
            }
            result = prefilled;
        }
        observer.onNext(PrefillMessages.toProto(prefilled, kvAddress));
        observer.onCompleted();
    }

    @Override
    public void onFailed(Throwable error) {
        synchronized (this) {
            if (cancelled) {
                return;
            }
        }
        // Not the client's cancel (that is handled above): the engine is shutting down.
        Status status = error instanceof CancellationException
                ? Status.UNAVAILABLE.withDescription("prefill worker " + engine.workerId() + " is shutting down")
                : WorkerStatuses.toStatus(error);
        observer.onError(status.asRuntimeException());
    }

    /** The client cancelled, its deadline passed, or the connection broke before the call ended OK. */
    void onCancel() {
        PrefillResult prefilled;
        synchronized (this) {
            cancelled = true;
            prefilled = result;
        }
        if (prefilled != null) {
            engine.release(prefilled.kvHandle().leaseId());
        } else {
            engine.cancel(requestId);
        }
    }
}
