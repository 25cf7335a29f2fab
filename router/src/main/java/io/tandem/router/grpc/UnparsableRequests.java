package io.tandem.router.grpc;

import io.grpc.ForwardingServerCallListener;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;

/**
 * Answers {@code INVALID_ARGUMENT} to a request message that does not parse: malformed wire
 * format, or a {@code string} field that is not UTF-8 (proto3 requires it). grpc-java itself closes
 * such a call with {@code UNKNOWN} and logs the parse failure as a server error at SEVERE, so any
 * client could fill the log.
 *
 * <p>Works on a service rebound to {@code InputStream} messages
 * ({@link ServerInterceptors#useInputStreamMessages}): the request is parsed into its proto type
 * inside the delegate's {@code onMessage}, where this interceptor catches the failure. For the
 * unary and server-streaming methods of {@code tandem.v1.Generation} {@code onMessage} does
 * nothing but parse and store the request (the method runs on half-close), so nothing else is caught.
 */
final class UnparsableRequests implements ServerInterceptor {

    private UnparsableRequests() {}

    /** {@code service} with requests that fail to parse answered by {@code INVALID_ARGUMENT}. */
    static ServerServiceDefinition refuse(ServerServiceDefinition service) {
        return ServerInterceptors.intercept(ServerInterceptors.useInputStreamMessages(service), new UnparsableRequests());
    }

    @Override
    public <ReqT, RespT> ServerCall.Listener<ReqT> interceptCall(
            ServerCall<ReqT, RespT> call, Metadata headers, ServerCallHandler<ReqT, RespT> next) {
        return new ForwardingServerCallListener.SimpleForwardingServerCallListener<>(next.startCall(call, headers)) {
            /** The call was closed here; the method must not run (nor close it a second time). */
            private boolean refused;

            @Override
            public void onMessage(ReqT message) {
                if (refused) {
                    return;
                }
                try {
                    super.onMessage(message);
                } catch (StatusRuntimeException e) {
                    refused = true;
                    Throwable cause = e.getCause() != null ? e.getCause() : e;
                    call.close(Status.INVALID_ARGUMENT.withDescription("the request is not a valid "
                            + call.getMethodDescriptor().getFullMethodName() + " request message: " + cause.getMessage()),
                            new Metadata());
                }
            }

            @Override
            public void onHalfClose() {
                if (!refused) {
                    super.onHalfClose();
                }
            }
        };
    }
}
