package io.tandem.app;

import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.tandem.control.HostPort;
import io.tandem.engine.model.LlamaModel;
import io.tandem.router.KvTransferMode;
import io.tandem.router.ServingMetrics;
import io.tandem.router.grpc.GrpcServer;
import io.tandem.router.openai.OpenAiHttpServer;
import io.tandem.router.worker.RoutingPolicy;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code tandem router}: the public OpenAI HTTP and gRPC APIs in front of remote prefill and decode
 * workers, until SIGINT/SIGTERM. The router reads the model file for its tokenizer, chat template
 * and limits (it memory-maps the whole GGUF, weights included, but computes nothing with them);
 * the workers must serve the same file.
 */
@Command(name = "router", mixinStandardHelpOptions = true,
        description = "Serve the public APIs and route requests to prefill and decode workers.")
final class RouterCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Mixin
    ModelOptions modelOptions = new ModelOptions();

    @Option(names = "--prefill", paramLabel = "HOST:PORT[,HOST:PORT…]", required = true,
            description = "gRPC addresses of the prefill workers.")
    String prefill;

    @Option(names = "--decode", paramLabel = "HOST:PORT[,HOST:PORT…]", required = true,
            description = "gRPC addresses of the decode workers.")
    String decode;

    @Option(names = {"--routing-policy", "--routing"}, paramLabel = "POLICY", defaultValue = "kv_aware",
            description = "How to pick workers: kv_aware (prefill by cached prefix and queued prefill tokens, "
                    + "decode by running sequences and free KV blocks), least_loaded (the same loads, no prefix "
                    + "cache) or round_robin. Default: ${DEFAULT-VALUE}.")
    String routing;

    @Option(names = "--kv-transfer-mode", paramLabel = "MODE", defaultValue = "overlap",
            description = "When decode workers pull a prompt's KV: overlap (the decode worker starts on the prefill's early "
                    + "handle and pulls each page as soon as it is computed, while later layers and chunks compute) or "
                    + "after_prefill (the decode worker is called once the prefill has finished). Default: ${DEFAULT-VALUE}.")
    String kvTransferMode;
    @Option(names = "--overlap-weight", paramLabel = "W", defaultValue = "1.0",
            description = "kv_aware: weight of an uncached prompt token against a queued prefill token in the prefill "
                    + "cost (W × uncached prefill tokens + queued prefill tokens); larger favours cache hits, 0 ignores "
                    + "the cache. Default: ${DEFAULT-VALUE}.")
    double overlapWeight;

    @Option(names = "--host", paramLabel = "HOST", defaultValue = "127.0.0.1", description = "Address to bind. Default: ${DEFAULT-VALUE}.")
    String host;

    @Option(names = "--http-port", paramLabel = "PORT", defaultValue = "8000", description = "OpenAI HTTP port (0 = any free). Default: ${DEFAULT-VALUE}.")
    int httpPort;

    @Option(names = "--grpc-port", paramLabel = "PORT", defaultValue = "50051", description = "gRPC port (0 = any free). Default: ${DEFAULT-VALUE}.")
    int grpcPort;

    @Option(names = "--max-in-flight", paramLabel = "N", defaultValue = "256",
            description = "Requests admitted at once; more get HTTP 429 / RESOURCE_EXHAUSTED. Default: ${DEFAULT-VALUE}.")
    int maxInFlight;

    @Option(names = "--prefill-timeout", paramLabel = "SECONDS", defaultValue = "120",
            description = "Deadline of one prefill call. Default: ${DEFAULT-VALUE}.")
    long prefillTimeoutSeconds;

    @Option(names = "--decode-timeout", paramLabel = "SECONDS", defaultValue = "3600",
            description = "Deadline of one decode stream (a whole generation). Default: ${DEFAULT-VALUE}.")
    long decodeTimeoutSeconds;

    @Override
    public Integer call() throws Exception {
        List<HostPort> prefillWorkers = HostPort.parseList(prefill);
        List<HostPort> decodeWorkers = HostPort.parseList(decode);
        KvTransferMode transferMode;
        try {
            transferMode = KvTransferMode.parse(kvTransferMode);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), e.getMessage());
        }
        if (!(overlapWeight >= 0) || Double.isInfinite(overlapWeight)) {
            throw new IllegalArgumentException("--overlap-weight must be a finite number >= 0, got " + overlapWeight);
        }
        if (!List.of("round_robin", "least_loaded", "kv_aware").contains(routing)) {
            throw new IllegalArgumentException("unknown --routing-policy '" + routing
                    + "' (expected round_robin, least_loaded or kv_aware)");
        }
        LlamaModel model = modelOptions.load();
        RoutingPolicy policy = RoutingPolicy.named(routing, model.id(), overlapWeight);
        PrometheusRegistry registry = new PrometheusRegistry();
        RemoteDeployment remote = new RemoteDeployment(model, prefillWorkers, decodeWorkers, policy, transferMode, maxInFlight,
                new ServingMetrics(registry, model.id()), Duration.ofSeconds(prefillTimeoutSeconds),
                Duration.ofSeconds(decodeTimeoutSeconds));
        OpenAiHttpServer http = new OpenAiHttpServer(remote.router, registry);
        GrpcServer grpc = new GrpcServer(remote.router, true);
        try {
            http.start(host, httpPort);
            grpc.start(host, grpcPort);
        } catch (Exception e) {
            ShutdownHook.closeAll(http, grpc, remote, model);
            throw e;
        }
        ShutdownHook hook = ShutdownHook.install(http, grpc, remote, model);
        for (String worker : remote.awaitHealthy(Duration.ofSeconds(5))) {
            System.err.println("tandem: " + worker + " does not answer yet; requests go to the healthy workers");
        }
        System.err.printf("tandem: router for model %s, %d prefill and %d decode workers, routing %s, KV transfer %s%n",
                model.id(), prefillWorkers.size(), decodeWorkers.size(), routing, kvTransferMode);
        // The same line as tandem serve: tests and scripts wait for it (and read the ports from it).
        System.out.printf("tandem: serving on http://%s:%d (OpenAI) and grpc %s:%d%n", host, http.port(), host, grpc.port());
        System.out.flush();
        hook.awaitStopped();
        return 0;
    }
}
