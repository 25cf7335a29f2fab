package io.tandem.decode;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ServerCallStreamObserver;
import io.tandem.engine.FinishReason;
import io.tandem.proto.v1.DecodeResponse;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Flow control and endings of the decode stream, against a scripted call. */
class DecodeResponseWriterTest {

    /** A server call whose readiness the test sets; records what the writer sends. */
    private static final class ScriptedCall extends ServerCallStreamObserver<DecodeResponse> {
        boolean ready = true;
        boolean cancelled;
        final List<DecodeResponse> sent = new ArrayList<>();
        Throwable error;
        boolean completed;

        @Override
        public boolean isCancelled() {
            return cancelled;
        }

        @Override
        public boolean isReady() {
            return ready;
        }

        @Override
        public void onNext(DecodeResponse value) {
            assertThat(completed || error != null).as("sent after the end").isFalse();
            sent.add(value);
        }

        @Override
        public void onError(Throwable t) {
            error = t;
        }

        @Override
        public void onCompleted() {
            completed = true;
        }

        @Override
        public void setOnCancelHandler(Runnable onCancelHandler) {}

        @Override
        public void setCompression(String compression) {}

        @Override
        public void setOnReadyHandler(Runnable onReadyHandler) {}

        @Override
        public void disableAutoInboundFlowControl() {}

        @Override
        public void request(int count) {}

        @Override
        public void setMessageCompression(boolean enable) {}
    }

    @Test
    void shouldSendEachTokenAtOnceWhileTheCallIsReadyAndTheFinishReasonOnTheLastMessage() {
        ScriptedCall call = new ScriptedCall();
        DecodeResponseWriter writer = new DecodeResponseWriter(call);
        writer.onToken(5);
        writer.onToken(6);
        writer.onFinish(FinishReason.STOP);
        assertThat(call.sent).extracting(DecodeResponse::getTokenIdsList).containsExactly(List.of(5), List.of(6), List.of());
        assertThat(call.sent.get(2).getFinishReason()).isEqualTo(io.tandem.proto.v1.FinishReason.FINISH_REASON_STOP);
        assertThat(call.sent.get(1).getFinishReason()).isEqualTo(io.tandem.proto.v1.FinishReason.FINISH_REASON_UNSPECIFIED);
        assertThat(call.completed).isTrue();
    }

    @Test
    void shouldMergeTokensWhileTheCallIsNotReadyAndSendThemWhenItIs() {
        ScriptedCall call = new ScriptedCall();
        DecodeResponseWriter writer = new DecodeResponseWriter(call);
        call.ready = false;
        for (int t = 0; t < 40; t++) {
            writer.onToken(t);
        }
        writer.onFinish(FinishReason.LENGTH);
        assertThat(call.sent).isEmpty();
        call.ready = true;
        writer.drain();
        assertThat(call.sent).hasSize(1);
        assertThat(call.sent.getFirst().getTokenIdsList()).hasSize(40).startsWith(0, 1, 2).endsWith(39);
        assertThat(call.sent.getFirst().getFinishReason()).isEqualTo(io.tandem.proto.v1.FinishReason.FINISH_REASON_LENGTH);
        assertThat(call.completed).isTrue();
        writer.drain();
        assertThat(call.sent).hasSize(1);
    }

    @Test
    void shouldSendAnEmptyFirstMessageOnAcceptanceOnlyIfNothingWasSentYet() {
        ScriptedCall call = new ScriptedCall();
        DecodeResponseWriter writer = new DecodeResponseWriter(call);
        writer.accepted();
        writer.onToken(7);
        assertThat(call.sent).extracting(DecodeResponse::getTokenIdsList).containsExactly(List.of(), List.of(7));

        ScriptedCall raced = new ScriptedCall();
        DecodeResponseWriter late = new DecodeResponseWriter(raced);
        late.onToken(7); // the engine's first token before the service marked the request accepted
        late.accepted();
        assertThat(raced.sent).extracting(DecodeResponse::getTokenIdsList).containsExactly(List.of(7));
    }

    @Test
    void shouldSendTheAcceptanceWhenTheCallBecomesReady() {
        ScriptedCall call = new ScriptedCall();
        DecodeResponseWriter writer = new DecodeResponseWriter(call);
        call.ready = false;
        writer.accepted();
        assertThat(call.sent).isEmpty();
        call.ready = true;
        writer.drain();
        assertThat(call.sent).extracting(DecodeResponse::getTokenIdsList).containsExactly(List.of());
        writer.drain();
        assertThat(call.sent).hasSize(1);
    }

    @Test
    void shouldEndTheCallWithTheErrorsStatusDroppingPendingTokens() {
        ScriptedCall call = new ScriptedCall();
        DecodeResponseWriter writer = new DecodeResponseWriter(call);
        call.ready = false;
        writer.onToken(1);
        writer.onError(new IllegalStateException("KV hand-off failed for r: stale handle"));
        assertThat(call.sent).isEmpty();
        assertThat(call.error).isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
            assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INTERNAL);
            assertThat(e.getStatus().getDescription()).contains("KV hand-off failed");
        });
    }

    @Test
    void shouldSendNothingToACancelledCall() {
        ScriptedCall call = new ScriptedCall();
        DecodeResponseWriter writer = new DecodeResponseWriter(call);
        call.cancelled = true;
        writer.onToken(1);
        writer.onFinish(FinishReason.ABORT);
        assertThat(call.sent).isEmpty();
        assertThat(call.completed).isFalse();
    }
}
