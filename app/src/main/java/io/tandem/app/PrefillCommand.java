package io.tandem.app;

import io.tandem.engine.KvLoadFailurePolicy;
import io.tandem.engine.backend.CpuBackend;
import io.tandem.engine.model.LlamaModel;
import io.tandem.prefill.PrefillWorker;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code tandem prefill}: one prefill worker process (gRPC {@code tandem.v1.PrefillWorker} + health,
 * {@code /metrics}, KV data plane) until SIGINT/SIGTERM, then a graceful shutdown.
 */
@Command(name = "prefill", mixinStandardHelpOptions = true,
        description = "Run a prefill worker: computes prompts' KV and hands it to decode workers.")
final class PrefillCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Mixin
    ModelOptions modelOptions = new ModelOptions();

    @Mixin
    EngineOptions engineOptions = new EngineOptions();

    @Mixin
    WorkerOptions workerOptions = new WorkerOptions();

    /** The gRPC port a worker of this role listens on by default; also what {@code router --discovery dns:NAME} probes. */
    static final String DEFAULT_GRPC_PORT = "50061";

    @Option(names = "--grpc-port", paramLabel = "PORT", defaultValue = DEFAULT_GRPC_PORT, description = "gRPC control-plane port (0 = any free). Default: ${DEFAULT-VALUE}.")
    int grpcPort;

    @Option(names = "--kv-port", paramLabel = "PORT", defaultValue = "50062",
            description = "KV data-plane port: decode workers pull pages there; handles advertise the bound port (0 = any free). Default: ${DEFAULT-VALUE}.")
    int kvPort;

    @Option(names = "--lease-timeout", paramLabel = "SECONDS", defaultValue = "30",
            description = "How long exported KV is kept without a release; each pull of it, and each renewal by the "
                    + "decode worker holding it, starts the time again. "
                    + "Must exceed the decode workers' --kv-transfer-timeout. Default: ${DEFAULT-VALUE}.")
    long leaseTimeoutSeconds;

    @Option(names = "--kv-serve-delay", paramLabel = "MILLIS", defaultValue = "0", hidden = true,
            description = "Test only: hold every KV pull this long before checking its lease and sending its pages, so "
                    + "that fault tests can hit a pull in flight. Default: ${DEFAULT-VALUE}.")
    long kvServeDelayMillis;

    @Option(names = "--kv-page-summaries", paramLabel = "on|off", defaultValue = "on",
            description = "Send with every KV handle the Quest summaries of its pages (per page and KV head, the min and "
                    + "max of K: 4 bytes per layer, KV head and head-dim channel per block), for decode workers' "
                    + "query-aware paging; prompts whose summaries would exceed 64 MiB get none. Default: ${DEFAULT-VALUE}.")
    String kvPageSummaries;

    @Option(names = "--metrics-port", paramLabel = "PORT", defaultValue = "8061", description = "HTTP /metrics port (0 = any free). Default: ${DEFAULT-VALUE}.")
    int metricsPort;

    @Override
    public Integer call() throws Exception {
        if (leaseTimeoutSeconds < 1) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "--lease-timeout must be >= 1 second, got " + leaseTimeoutSeconds);
        }
        boolean pageSummaries = switch (kvPageSummaries) {
            case "on" -> true;
            case "off" -> false;
            default -> throw new CommandLine.ParameterException(spec.commandLine(),
                    "--kv-page-summaries must be on or off, got '" + kvPageSummaries + "'");
        };
        if (kvServeDelayMillis < 0) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "--kv-serve-delay must be >= 0 ms, got " + kvServeDelayMillis);
        }
        LlamaModel model = modelOptions.load();
        CpuBackend backend = new CpuBackend(engineOptions.threadCount());
        PrefillWorker worker;
        try {
            worker = new PrefillWorker(model, backend,
                    engineOptions.toConfig(Duration.ofSeconds(leaseTimeoutSeconds), KvLoadFailurePolicy.FAIL), workerOptions.workerId("prefill", grpcPort),
                    Duration.ofMillis(kvServeDelayMillis), pageSummaries)
                    .start(workerOptions.host, workerOptions.advertisedHost(), grpcPort, kvPort, metricsPort);
        } catch (Exception e) {
            ShutdownHook.closeAll(backend, model);
            throw e;
        }
        ShutdownHook hook = ShutdownHook.install(worker, backend, model);
        String host = workerOptions.host;
        System.err.printf("tandem: model %s, %d compute threads%n", model.id(), engineOptions.threadCount());
        // Tests and scripts wait for this exact line (and read the ports from it).
        System.out.printf("tandem: prefill worker %s serving grpc %s:%d kv %s metrics http://%s:%d%n", worker.workerId(), host,
                worker.grpcPort(), worker.kvAddress(), host, worker.metricsPort());
        System.out.flush();
        hook.awaitStopped();
        return 0;
    }
}
