package io.tandem.app;

import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.tandem.control.HostPort;
import io.tandem.engine.model.LlamaModel;
import io.tandem.router.KvTransferMode;
import io.tandem.router.ServingMetrics;
import io.tandem.router.discovery.DiscoveryTarget;
import io.tandem.router.grpc.GrpcServer;
import io.tandem.router.openai.OpenAiHttpServer;
import io.tandem.router.worker.RoutingPolicy;
import java.security.Security;
import java.time.Duration;
import java.util.ArrayList;
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

    @Option(names = "--prefill", paramLabel = "HOST:PORT[,HOST:PORT…]",
            description = "gRPC addresses of the prefill workers (static: they stay in the pool). "
                    + "Required unless --discovery is given.")
    String prefill;

    @Option(names = "--decode", paramLabel = "HOST:PORT[,HOST:PORT…]",
            description = "gRPC addresses of the decode workers (static: they stay in the pool). "
                    + "Required unless --discovery is given.")
    String decode;

    @Option(names = "--discovery", paramLabel = "dns:NAME[:PORT]", split = ",", converter = DiscoveryTargetConverter.class,
            description = "Find workers in DNS (e.g. a Kubernetes headless Service: one A/AAAA record per ready pod). "
                    + "NAME is looked up every --discovery-interval; each address found is probed at PORT (without "
                    + "one: at both workers' default gRPC ports, " + PrefillCommand.DEFAULT_GRPC_PORT + " and "
                    + DecodeCommand.DEFAULT_GRPC_PORT + ") and joins the prefill or decode pool by the worker service "
                    + "its grpc.health.v1 reports SERVING; an address gone from DNS leaves its pool (no new requests; "
                    + "closed once its requests end). Repeatable; combines with --prefill and --decode.")
    List<DiscoveryTarget> discovery = new ArrayList<>();

    @Option(names = "--discovery-interval", paramLabel = "SECONDS", defaultValue = "5",
            description = "Time between two DNS lookups of the --discovery names (decimals allowed; the JVM's "
                    + "name cache is turned off for them). Default: ${DEFAULT-VALUE}.")
    double discoveryIntervalSeconds;

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

    @Mixin
    ApiServerOptions api = new ApiServerOptions();

    @Option(names = "--prefill-timeout", paramLabel = "SECONDS", defaultValue = "120",
            description = "Deadline of one prefill call. Default: ${DEFAULT-VALUE}.")
    long prefillTimeoutSeconds;

    @Option(names = "--decode-timeout", paramLabel = "SECONDS", defaultValue = "3600",
            description = "Deadline of one decode stream (a whole generation). Default: ${DEFAULT-VALUE}.")
    long decodeTimeoutSeconds;

    @Override
    public Integer call() throws Exception {
        if (discovery.isEmpty() && (prefill == null || decode == null)) {
            throw new CommandLine.ParameterException(spec.commandLine(), "Missing required option: '"
                    + (prefill == null ? "--prefill" : "--decode") + "' (or '--discovery=dns:NAME[:PORT]')");
        }
        if (!(discoveryIntervalSeconds > 0) || discoveryIntervalSeconds > MAX_DISCOVERY_INTERVAL_SECONDS) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--discovery-interval must be > 0 and <= "
                    + MAX_DISCOVERY_INTERVAL_SECONDS + " seconds, got " + discoveryIntervalSeconds);
        }
        List<HostPort> prefillWorkers = workers("--prefill", prefill);
        List<HostPort> decodeWorkers = workers("--decode", decode);
        if (!discovery.isEmpty()) {
            turnOffJvmNameCache();
        }
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
        Duration discoveryInterval = Duration.ofNanos(Math.round(discoveryIntervalSeconds * 1e9));
        RemoteDeployment remote = new RemoteDeployment(model, prefillWorkers, decodeWorkers, discovery, discoveryInterval,
                policy, transferMode, api.maxInFlight, new ServingMetrics(registry, model.id()),
                Duration.ofSeconds(prefillTimeoutSeconds), Duration.ofSeconds(decodeTimeoutSeconds));
        OpenAiHttpServer http = new OpenAiHttpServer(remote.router, registry);
        GrpcServer grpc = new GrpcServer(remote.router, true);
        try {
            remote.startDiscovery();
            api.start(http, grpc);
        } catch (Exception e) {
            ShutdownHook.closeAll(http, grpc, remote, model);
            throw e;
        }
        ShutdownHook hook = ShutdownHook.install(http, grpc, remote, model);
        for (String worker : remote.awaitHealthy(Duration.ofSeconds(5))) {
            System.err.println("tandem: " + worker + " does not answer yet; requests go to the healthy workers");
        }
        System.err.printf("tandem: router for model %s, %d prefill and %d decode workers%s, routing %s, KV transfer %s%n",
                model.id(), remote.prefillPool.members().size(), remote.decodePool.members().size(),
                discovery.isEmpty() ? "" : " (discovery " + discovery + " every " + discoveryIntervalSeconds + " s)",
                routing, kvTransferMode);
        api.printServing(http, grpc);
        hook.awaitStopped();
        return 0;
    }

    /** Longest {@code --discovery-interval}: an hour (a longer one is surely a unit mistake). */
    static final long MAX_DISCOVERY_INTERVAL_SECONDS = 3600;

    /** Parses a static worker list; {@code null} (option not given) is none. */
    private List<HostPort> workers(String option, String text) {
        if (text == null) {
            return List.of();
        }
        try {
            return HostPort.parseList(text);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "Invalid value for option '" + option + "': " + e.getMessage());
        }
    }

    /**
     * Makes every name lookup ask the resolver afresh: the JVM otherwise caches a positive answer for
     * 30 s ({@code networkaddress.cache.ttl}, read once at the first lookup), so discovery would see
     * pods come and go late. Must run before this JVM's first lookup. A TTL the operator set
     * ({@code -Dsun.net.inetaddr.ttl}, {@code java.security}) is kept.
     */
    private static void turnOffJvmNameCache() {
        if (Security.getProperty("networkaddress.cache.ttl") == null && System.getProperty("sun.net.inetaddr.ttl") == null) {
            Security.setProperty("networkaddress.cache.ttl", "0");
        }
    }

    /** {@code --discovery} values: {@code dns:NAME[:PORT]}, without a port both roles' default gRPC ports. */
    static final class DiscoveryTargetConverter implements CommandLine.ITypeConverter<DiscoveryTarget> {
        @Override
        public DiscoveryTarget convert(String value) {
            try {
                return DiscoveryTarget.parse(value, List.of(Integer.parseInt(PrefillCommand.DEFAULT_GRPC_PORT),
                        Integer.parseInt(DecodeCommand.DEFAULT_GRPC_PORT)));
            } catch (IllegalArgumentException e) {
                throw new CommandLine.TypeConversionException(e.getMessage());
            }
        }
    }
}
