package io.tandem.router.worker;

import io.grpc.Status;

/**
 * A call to a remote worker failed for a reason that is not the request's fault nor an overload:
 * the worker is unreachable or shutting down ({@code UNAVAILABLE}), the call's deadline passed,
 * a stale handle ({@code FAILED_PRECONDITION}), or the worker failed ({@code INTERNAL}).
 */
public final class WorkerCallException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final transient Status.Code code;

    public WorkerCallException(String workerId, Status status) {
        super("worker " + workerId + ": " + status.getCode()
                + (status.getDescription() == null ? "" : ": " + status.getDescription()), status.getCause());
        this.code = status.getCode();
    }

    /** The status code the worker (or the transport) answered. */
    public Status.Code code() {
        return code;
    }
}
