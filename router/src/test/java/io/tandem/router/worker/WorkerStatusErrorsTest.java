package io.tandem.router.worker;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.Status;
import io.tandem.router.OverloadedException;
import java.nio.channels.ClosedChannelException;
import java.util.concurrent.CancellationException;
import org.junit.jupiter.api.Test;

class WorkerStatusErrorsTest {
    @Test
    void shouldReportACallCutByItsClosedConnectionAsUnavailableWhicheverSideNoticedIt() {
        // what grpc-netty gives when a write finds the channel closed
        Status written = Status.UNKNOWN.withDescription("channel closed").withCause(new ClosedChannelException());
        Status read = Status.UNAVAILABLE.withDescription("Connection closed after GOAWAY");

        for (Status status : new Status[] {written, read}) {
            RuntimeException e = WorkerStatusErrors.toException("decode-0", status.asRuntimeException());
            assertThat(e).isInstanceOf(WorkerCallException.class).hasMessageContaining("decode-0").hasMessageContaining("UNAVAILABLE");
        }
    }

    @Test
    void shouldKeepOtherStatuses() {
        assertThat(WorkerStatusErrors.toException("w", Status.UNKNOWN.withDescription("boom").asRuntimeException()))
                .isInstanceOf(WorkerCallException.class).hasMessageContaining("UNKNOWN");
        assertThat(WorkerStatusErrors.toException("w", Status.CANCELLED.asRuntimeException()))
                .isInstanceOf(CancellationException.class);
        assertThat(WorkerStatusErrors.toException("w", Status.RESOURCE_EXHAUSTED.asRuntimeException()))
                .isInstanceOf(OverloadedException.class);
    }
}
