package io.tandem.router.grpc;

import io.grpc.stub.ServerCallStreamObserver;
import io.tandem.engine.FinishReason;
import io.tandem.proto.v1.GenerateResponse;
import io.tandem.router.GenerationListener;
import io.tandem.router.Usage;
import java.util.Arrays;

/**
 * Streams one request's output as {@code GenerateResponse} messages, honouring gRPC flow control:
 * while the transport is not ready ({@link ServerCallStreamObserver#isReady()} false) outputs are
 * merged into one pending message (token ids appended, text concatenated), sent as soon as the
 * transport's on-ready handler fires. Pending state is therefore bounded by {@code max_tokens}. The
 * last message carries {@code finish_reason} and {@code usage}.
 *
 * <p>Router threads and gRPC's on-ready callback both enter here; one lock serializes them, and
 * nothing under it blocks.
 */
final class GenerateResponseWriter implements GenerationListener {

    private final ServerCallStreamObserver<GenerateResponse> observer;
    private final String requestId;
    private final Object lock = new Object();

    private int[] pendingTokens = new int[16];
    private int pendingTokenCount;
    private final StringBuilder pendingText = new StringBuilder();
    private FinishReason finishReason;
    private Usage usage;
    private Throwable failure;
    /** {@code onCompleted} or {@code onError} was called; nothing more may be sent. */
    private boolean closed;

    GenerateResponseWriter(ServerCallStreamObserver<GenerateResponse> observer, String requestId) {
        this.observer = observer;
        this.requestId = requestId;
    }

    /** Sends whatever is pending if the transport is ready; the call's on-ready handler. */
    void drain() {
        synchronized (lock) {
            drainLocked();
        }
    }

    @Override
    public void onOutput(int[] tokenIds, String textDelta) {
        synchronized (lock) {
            if (pendingTokenCount + tokenIds.length > pendingTokens.length) {
                pendingTokens = Arrays.copyOf(pendingTokens, Math.max(2 * pendingTokens.length, pendingTokenCount + tokenIds.length));
            }
            System.arraycopy(tokenIds, 0, pendingTokens, pendingTokenCount, tokenIds.length);
            pendingTokenCount += tokenIds.length;
            pendingText.append(textDelta);
            drainLocked();
        }
    }

    @Override
    public void onFinish(FinishReason reason, Usage usage) {
        synchronized (lock) {
            this.finishReason = reason;
            this.usage = usage;
            drainLocked();
        }
    }

    @Override
    public void onError(Throwable error) {
        synchronized (lock) {
            this.failure = error;
            drainLocked();
        }
    }

    private void drainLocked() {
        if (closed || observer.isCancelled()) {
            return;
        }
        if (failure != null) {
            closed = true;
            observer.onError(GrpcStatuses.toStatus(failure).asRuntimeException());
            return;
        }
        boolean hasOutput = pendingTokenCount > 0 || !pendingText.isEmpty();
        if ((!hasOutput && finishReason == null) || !observer.isReady()) {
            return;
        }
        GenerateResponse.Builder message = GenerateResponse.newBuilder().setRequestId(requestId).setText(pendingText.toString());
        for (int i = 0; i < pendingTokenCount; i++) {
            message.addTokenIds(pendingTokens[i]);
        }
        pendingTokenCount = 0;
        pendingText.setLength(0);
        if (finishReason != null) {
            message.setFinishReason(toProto(finishReason)).setUsage(io.tandem.proto.v1.Usage.newBuilder()
                    .setPromptTokens(usage.promptTokens())
                    .setCompletionTokens(usage.completionTokens())
                    .setTotalTokens(usage.totalTokens()));
        }
        observer.onNext(message.build());
        if (finishReason != null) {
            closed = true;
            observer.onCompleted();
        }
    }

    private static io.tandem.proto.v1.FinishReason toProto(FinishReason reason) {
        return switch (reason) {
            case STOP -> io.tandem.proto.v1.FinishReason.FINISH_REASON_STOP;
            case LENGTH -> io.tandem.proto.v1.FinishReason.FINISH_REASON_LENGTH;
            case ABORT -> io.tandem.proto.v1.FinishReason.FINISH_REASON_ABORT;
        };
    }
}
