package io.tandem.control;

import io.grpc.Status;
import io.tandem.engine.InvalidArgumentException;
import java.util.concurrent.CancellationException;

/** Maps what a worker's engine reports to the gRPC status its server sends (the server edge only). */
public final class WorkerStatuses {
    private WorkerStatuses() {}

    /**
     * {@link IllegalArgumentException} (an {@link InvalidArgumentException} names its field) →
     * {@code INVALID_ARGUMENT}; {@link CancellationException} → {@code CANCELLED}; anything else →
     * {@code INTERNAL} with the error as description and cause.
     */
    public static Status toStatus(Throwable error) {
        return switch (error) {
            case InvalidArgumentException e -> Status.INVALID_ARGUMENT.withDescription(namingField(e));
            case IllegalArgumentException e -> Status.INVALID_ARGUMENT.withDescription(e.getMessage());
            case CancellationException e -> Status.CANCELLED.withDescription(e.getMessage());
            default -> Status.INTERNAL.withDescription(String.valueOf(error)).withCause(error);
        };
    }

    private static String namingField(InvalidArgumentException e) {
        String message = e.getMessage();
        if (e.param() == null || (message != null && message.contains(e.param()))) {
            return message;
        }
        return e.param() + ": " + message;
    }
}
