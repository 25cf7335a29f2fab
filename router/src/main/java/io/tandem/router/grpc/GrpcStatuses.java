package io.tandem.router.grpc;

import io.grpc.Status;
import io.tandem.control.WorkerStatuses;
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
            case InvalidArgumentException e -> WorkerStatuses.invalidArgument(e);
            case ModelNotFoundException e -> Status.NOT_FOUND.withDescription(e.getMessage());
            case OverloadedException e -> Status.RESOURCE_EXHAUSTED.withDescription(
                    e.getMessage() + "; retry after " + e.retryAfterSeconds() + " s");
            default -> Status.INTERNAL.withDescription(String.valueOf(error)).withCause(error);
        };
    }
}
