package io.tandem.app;

import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.tandem.engine.model.LlamaModel;
import io.tandem.metrics.EngineMetrics;
import io.tandem.router.ServingMetrics;
import io.tandem.router.grpc.GrpcServer;
import io.tandem.router.openai.OpenAiHttpServer;
import java.util.List;
import java.util.concurrent.Callable;
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

    @Mixin
    ApiServerOptions api = new ApiServerOptions();

    @Override
    public Integer call() throws Exception {
        LlamaModel model = modelOptions.load();
        PrometheusRegistry registry = new PrometheusRegistry();
        LocalDeployment local = new LocalDeployment(model, engineOptions.toConfig(), engineOptions.threadCount(), api.maxInFlight,
                new ServingMetrics(registry, model.id()));
        EngineMetrics.register(registry, model.id(), new String[] {"prefill", "decode"},
                List.of(local.prefill::stats, local.decode::stats));
        OpenAiHttpServer http = new OpenAiHttpServer(local.router, registry);
        GrpcServer grpc = new GrpcServer(local.router, true);
        try {
            api.start(http, grpc);
        } catch (Exception e) {
            ShutdownHook.closeAll(http, grpc, local);
            throw e;
        }
        ShutdownHook hook = ShutdownHook.install(http, grpc, local);
        var c = model.config();
        System.err.printf("tandem: model %s (%s, %d layers, dim %d, vocab %d, context %d), %d compute threads%n",
                model.id(), c.architecture(), c.numLayers(), c.dim(), c.vocabSize(), c.contextLength(),
                engineOptions.threadCount());
        api.printServing(http, grpc);
        hook.awaitStopped();
        return 0;
    }
}
