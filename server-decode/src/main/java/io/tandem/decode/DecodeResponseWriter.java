package io.tandem.decode;

import io.grpc.stub.ServerCallStreamObserver;
import io.tandem.control.WorkerStatuses;
import io.tandem.engine.FinishReason;
import io.tandem.engine.TokenSink;
import io.tandem.proto.v1.DecodeResponse;
import java.util.Arrays;

/**
 * Streams one sequence's tokens as {@code DecodeResponse} messages, honouring gRPC flow control:
 * while the transport is not ready ({@link ServerCallStreamObserver#isReady()} false) tokens are
 * merged into one pending message, sent as soon as the on-ready handler fires, so what is pending
 * is bounded by {@code max_tokens}. The last message carries {@code finish_reason}; an engine error
 * ends the call with its status ({@link WorkerStatuses}). {@link #accepted()} sends a first
 * message at once, even without a token, telling the router the worker now owns the handle.
 *
 * <p>The engine thread ({@link TokenSink}) and gRPC's on-ready callback both enter here; one lock
 * serializes them and nothing under it blocks.
 */
final class DecodeResponseWriter implements TokenSink {
    private final ServerCallStreamObserver<DecodeResponse> observer;
    private final Object lock = new Object();
    private int[] pendingTokens = new int[16];
    private int pendingTokenCount;
    private FinishReason finishReason;
    private Throwable failure;
    /** The request was accepted and no message has been sent yet: the next drain sends one, empty if need be. */
    private boolean acceptancePending;
    private boolean sentAny;
    /** {@code onCompleted} or {@code onError} was called; nothing more may be sent. */
    private boolean closed;

    DecodeResponseWriter(ServerCallStreamObserver<DecodeResponse> observer) {
        this.observer = observer;
    }

    /** Sends whatever is pending if the transport is ready; the call's on-ready handler. */
    void drain() {
        synchronized (lock) {
            drainLocked();
        }
    }

    /** The engine took the request: send a first message (with whatever is pending) as soon as the stream is ready. */
    void accepted() {
        synchronized (lock) {
            acceptancePending = !sentAny;
            drainLocked();
        }
    }

    @Override
    public void onToken(int tokenId) {
        synchronized (lock) {
            if (pendingTokenCount == pendingTokens.length) {
                pendingTokens = Arrays.copyOf(pendingTokens, 2 * pendingTokens.length);
            }
            pendingTokens[pendingTokenCount++] = tokenId;
            drainLocked();
        }
    }

    @Override
    public void onFinish(FinishReason reason) {
        synchronized (lock) {
            finishReason = reason;
            drainLocked();
        }
    }

    @Override
    public void onError(Throwable error) {
        synchronized (lock) {
            failure = error;
            drainLocked();
        }
    }

    private void drainLocked() {
        if (closed || observer.isCancelled()) {
            return;
        }
        if (failure != null) {
            closed = true;
            // A status the service chose itself goes as it is; an engine error is mapped.
            observer.onError(failure instanceof io.grpc.StatusRuntimeException status ? status
                    : WorkerStatuses.toStatus(failure).asRuntimeException());
            return;
        }
        if ((pendingTokenCount == 0 && finishReason == null && !acceptancePending) || !observer.isReady()) {
            return;
        }
        acceptancePending = false;
        DecodeResponse.Builder message = DecodeResponse.newBuilder();
        for (int i = 0; i < pendingTokenCount; i++) {
            message.addTokenIds(pendingTokens[i]);
        }
        pendingTokenCount = 0;
        if (finishReason != null) {
            message.setFinishReason(toProto(finishReason));
        }
        observer.onNext(message.build());
        sentAny = true;
        if (finishReason != null) {
            closed = true;
            observer.onCompleted();
        }
    }

    static io.tandem.proto.v1.FinishReason toProto(FinishReason reason) {
        return switch (reason) {
            case STOP -> io.tandem.proto.v1.FinishReason.FINISH_REASON_STOP;
            case LENGTH -> io.tandem.proto.v1.FinishReason.FINISH_REASON_LENGTH;
            case ABORT -> io.tandem.proto.v1.FinishReason.FINISH_REASON_ABORT;
        };
    }
}
