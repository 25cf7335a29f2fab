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
            case InvalidArgumentException e -> invalidArgument(e);
            case IllegalArgumentException e -> Status.INVALID_ARGUMENT.withDescription(e.getMessage());
            case CancellationException e -> Status.CANCELLED.withDescription(e.getMessage());
            default -> Status.INTERNAL.withDescription(String.valueOf(error)).withCause(error);
        };
    }

    /**
     * {@code INVALID_ARGUMENT} whose description names the bad field ({@link
     * InvalidArgumentException#param()}) unless the message already does; for every gRPC service
     * of Tandem, public API and control plane alike.
     */
    public static Status invalidArgument(InvalidArgumentException e) {
        return Status.INVALID_ARGUMENT.withDescription(namingField(e));
    }

    private static String namingField(InvalidArgumentException e) {
        String message = e.getMessage();
        if (e.param() == null || (message != null && message.contains(e.param()))) {
            return message;
        }
        return e.param() + ": " + message;
    }
}
