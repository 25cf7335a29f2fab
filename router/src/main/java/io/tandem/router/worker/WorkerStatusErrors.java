package io.tandem.router.worker;

import io.grpc.Status;
import io.tandem.engine.InvalidArgumentException;
import io.tandem.router.OverloadedException;
import java.nio.channels.ClosedChannelException;
import java.util.concurrent.CancellationException;

/** Turns the status a worker call ended with into the exception the router reports for the request. */
final class WorkerStatusErrors {
    private WorkerStatusErrors() {}

    /**
     * {@code CANCELLED} → {@link CancellationException}, {@code RESOURCE_EXHAUSTED} →
     * {@link OverloadedException} (retry after 1 s), {@code INVALID_ARGUMENT} →
     * {@link InvalidArgumentException}, anything else → {@link WorkerCallException}. A call cut by
     * its connection closing (grpc-netty reports a write on the closed channel as {@code UNKNOWN:
     * channel closed}, a read as {@code UNAVAILABLE}, depending on which it noticed first) is
     * {@code UNAVAILABLE} either way: the worker is gone or unreachable.
     */
    static RuntimeException toException(String workerId, Throwable error) {
        Status status = Status.fromThrowable(error);
        if (status.getCode() == Status.Code.UNKNOWN && status.getCause() instanceof ClosedChannelException) {
            status = Status.UNAVAILABLE.withDescription("connection closed (" + status.getDescription() + ")")
                    .withCause(status.getCause());
        }
        String description = status.getDescription() == null ? status.getCode().toString() : status.getDescription();
        return switch (status.getCode()) {
            case CANCELLED -> new CancellationException("worker " + workerId + ": " + description);
            case RESOURCE_EXHAUSTED -> new OverloadedException(description, 1);
            case INVALID_ARGUMENT -> new InvalidArgumentException(null, description);
            default -> new WorkerCallException(workerId, status);
        };
    }
}
