package io.tandem.app;

import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.tandem.engine.model.LlamaModel;
import io.tandem.metrics.EngineMetrics;
import io.tandem.router.ServingMetrics;
import io.tandem.router.grpc.GrpcServer;
import io.tandem.router.openai.OpenAiHttpServer;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code tandem serve}: router + prefill + decode in one JVM, serving OpenAI HTTP and gRPC until
 * SIGINT/SIGTERM, then shutting down gracefully (servers first, then engines).
 */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = "Serve a model (router + prefill + decode in one JVM) over OpenAI HTTP and gRPC.")
final class ServeCommand implements Callable<Integer> {
    @Mixin
    ModelOptions modelOptions = new ModelOptions();

    @Mixin
    EngineOptions engineOptions = new EngineOptions();

    @Option(names = "--host", paramLabel = "HOST", defaultValue = "127.0.0.1", description = "Address to bind. Default: ${DEFAULT-VALUE}.")
    String host;

    @Option(names = "--http-port", paramLabel = "PORT", defaultValue = "8000", description = "OpenAI HTTP port (0 = any free). Default: ${DEFAULT-VALUE}.")
    int httpPort;

    @Option(names = "--grpc-port", paramLabel = "PORT", defaultValue = "50051", description = "gRPC port (0 = any free). Default: ${DEFAULT-VALUE}.")
    int grpcPort;

    @Option(names = "--max-in-flight", paramLabel = "N", defaultValue = "256",
            description = "Requests admitted at once; more get HTTP 429 / RESOURCE_EXHAUSTED. Default: ${DEFAULT-VALUE}.")
    int maxInFlight;

    @Override
    public Integer call() throws Exception {
        LlamaModel model = modelOptions.load();
        PrometheusRegistry registry = new PrometheusRegistry();
        LocalDeployment local = new LocalDeployment(model, engineOptions.toConfig(), engineOptions.threadCount(), maxInFlight,
                new ServingMetrics(registry, model.id()));
        EngineMetrics.register(registry, model.id(), new String[] {"prefill", "decode"},
                List.of(local.prefill::stats, local.decode::stats));
        OpenAiHttpServer http = new OpenAiHttpServer(local.router, registry);
        GrpcServer grpc = new GrpcServer(local.router, true);
        CountDownLatch stopped = new CountDownLatch(1);
        Thread hook = new Thread(() -> {
            http.close();
            grpc.close();
            local.close();
            stopped.countDown();
        }, "tandem-shutdown");
        try {
            http.start(host, httpPort);
            grpc.start(host, grpcPort);
        } catch (Exception e) {
            hook.run();
            throw e;
        }
        Runtime.getRuntime().addShutdownHook(hook);
        var c = model.config();
        System.err.printf("tandem: model %s (%s, %d layers, dim %d, vocab %d, context %d), %d compute threads%n",
                model.id(), c.architecture(), c.numLayers(), c.dim(), c.vocabSize(), c.contextLength(),
                engineOptions.threadCount());
        // Tests and scripts wait for this exact line (and read the ports from it).
        System.out.printf("tandem: serving on http://%s:%d (OpenAI) and grpc %s:%d%n", host, http.port(), host, grpc.port());
        System.out.flush();
        stopped.await();
        return 0;
    }
}
