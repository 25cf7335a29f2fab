package io.tandem.router.grpc;

import io.grpc.Status;
import io.tandem.engine.InvalidArgumentException;
import io.tandem.router.ModelNotFoundException;
import io.tandem.router.OverloadedException;

/** Maps router exceptions to gRPC statuses at the server edge. */
final class GrpcStatuses {

    private GrpcStatuses() {}

    /**
     * {@link InvalidArgumentException} → {@code INVALID_ARGUMENT} (the description names the field),
     * {@link ModelNotFoundException} → {@code NOT_FOUND}, {@link OverloadedException} →
     * {@code RESOURCE_EXHAUSTED}, anything else → {@code INTERNAL}.
     */
    static Status toStatus(Throwable error) {
        return switch (error) {
            case InvalidArgumentException e -> Status.INVALID_ARGUMENT.withDescription(namingField(e));
            case ModelNotFoundException e -> Status.NOT_FOUND.withDescription(e.getMessage());
            case OverloadedException e -> Status.RESOURCE_EXHAUSTED.withDescription(
                    e.getMessage() + "; retry after " + e.retryAfterSeconds() + " s");
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
