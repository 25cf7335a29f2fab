package io.tandem.app;

import io.tandem.router.grpc.GrpcServer;
import io.tandem.router.openai.OpenAiHttpServer;
import java.io.IOException;
import picocli.CommandLine.Option;

/** The public API's listeners and admission limit, shared by {@code tandem serve} and {@code tandem router}. */
final class ApiServerOptions {
    @Option(names = "--host", paramLabel = "HOST", defaultValue = "127.0.0.1", description = "Address to bind. Default: ${DEFAULT-VALUE}.")
    String host;

    @Option(names = "--http-port", paramLabel = "PORT", defaultValue = "8000", description = "OpenAI HTTP port (0 = any free). Default: ${DEFAULT-VALUE}.")
    int httpPort;

    @Option(names = "--grpc-port", paramLabel = "PORT", defaultValue = "50051", description = "gRPC port (0 = any free). Default: ${DEFAULT-VALUE}.")
    int grpcPort;

    @Option(names = "--max-in-flight", paramLabel = "N", defaultValue = "256",
            description = "Requests admitted at once; more get HTTP 429 / RESOURCE_EXHAUSTED. Default: ${DEFAULT-VALUE}.")
    int maxInFlight;

    /** Binds both listeners. */
    void start(OpenAiHttpServer http, GrpcServer grpc) throws IOException, InterruptedException {
        http.start(host, httpPort);
        grpc.start(host, grpcPort);
    }

    /** The ready line on stdout: tests and scripts wait for it and read the bound ports from it. */
    void printServing(OpenAiHttpServer http, GrpcServer grpc) {
        System.out.printf("tandem: serving on http://%s:%d (OpenAI) and grpc %s:%d%n", host, http.port(), host, grpc.port());
        System.out.flush();
    }
}
