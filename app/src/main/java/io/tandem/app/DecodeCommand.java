package io.tandem.app;

import io.tandem.decode.DecodeWorker;
import io.tandem.decode.KvSourceDirectory;
import io.tandem.engine.KvLoadFailurePolicy;
import io.tandem.engine.backend.CpuBackend;
import io.tandem.engine.model.LlamaModel;
import io.tandem.kvcache.transfer.NettyKvTransport;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code tandem decode}: one decode worker process (gRPC {@code tandem.v1.DecodeWorker} + health,
 * {@code /metrics}) pulling prompts' KV from prefill workers over the Netty data plane
 * ({@link NettyKvTransport}, addresses learned from the handles), until SIGINT/SIGTERM, then a
 * graceful shutdown: the worker (whose engine releases every handle it holds), then the transport.
 */
@Command(name = "decode", mixinStandardHelpOptions = true,
        description = "Run a decode worker: pulls prompts' KV from prefill workers and generates.")
final class DecodeCommand implements Callable<Integer> {
    /** I/O threads of the KV transport: pages are copied from socket buffers straight into KV memory. */
    private static final int KV_IO_THREADS = 1;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Mixin
    ModelOptions modelOptions = new ModelOptions();

    @Mixin
    EngineOptions engineOptions = new EngineOptions();

    @Mixin
    WorkerOptions workerOptions = new WorkerOptions();

    /** The gRPC port a worker of this role listens on by default; also what {@code router --discovery dns:NAME} probes. */
    static final String DEFAULT_GRPC_PORT = "50071";

    @Option(names = "--grpc-port", paramLabel = "PORT", defaultValue = DEFAULT_GRPC_PORT, description = "gRPC control-plane port (0 = any free). Default: ${DEFAULT-VALUE}.")
    int grpcPort;

    @Option(names = "--metrics-port", paramLabel = "PORT", defaultValue = "8071", description = "HTTP /metrics port (0 = any free). Default: ${DEFAULT-VALUE}.")
    int metricsPort;

    @Option(names = "--kv-transfer-timeout", paramLabel = "SECONDS", defaultValue = "10",
            description = "How long a pull of one prompt's KV may go without receiving a page (counted from the call, "
                    + "connecting included, then from the last page) before it fails (see "
                    + "--kv-load-failure-policy). Must stay below the prefill workers' --lease-timeout. The lease of every "
                    + "handle held is renewed each third of it until released. Default: ${DEFAULT-VALUE}.")
    long kvTransferTimeoutSeconds;

    @Option(names = "--kv-max-in-flight-bytes", paramLabel = "BYTES", defaultValue = "67108864",
            description = "KV payload bytes a prefill worker may send ahead of what this worker has copied, per connection "
                    + "(credit window; at least one page). Default: ${DEFAULT-VALUE} (64 MiB).")
    long kvMaxInFlightBytes;

    @Option(names = "--kv-load-failure-policy", paramLabel = "POLICY", defaultValue = "fail",
            description = "When pulling a prompt's KV fails or times out: fail (end the request with an error) or "
                    + "recompute (compute the prompt's KV here). Default: ${DEFAULT-VALUE}.")
    String kvLoadFailurePolicy;

    @Override
    public Integer call() throws Exception {
        KvLoadFailurePolicy policy;
        try {
            policy = KvLoadFailurePolicy.parse(kvLoadFailurePolicy);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), e.getMessage());
        }
        if (kvTransferTimeoutSeconds < 1) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "--kv-transfer-timeout must be >= 1 second, got " + kvTransferTimeoutSeconds);
        }
        if (kvMaxInFlightBytes < 1) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "--kv-max-in-flight-bytes must be >= 1, got " + kvMaxInFlightBytes);
        }
        LlamaModel model = modelOptions.load();
        CpuBackend backend = new CpuBackend(engineOptions.threadCount());
        KvSourceDirectory directory = new KvSourceDirectory();
        NettyKvTransport transport = new NettyKvTransport(directory::resolve, Duration.ofSeconds(kvTransferTimeoutSeconds),
                kvMaxInFlightBytes, KV_IO_THREADS);
        DecodeWorker worker;
        try {
            worker = new DecodeWorker(model, backend, engineOptions.toConfig(EngineOptions.DEFAULT_LEASE_TIMEOUT, policy),
                    workerOptions.workerId("decode", grpcPort), transport, directory,
                    // a third of the transfer timeout, hence below a third of any valid lease timeout
                    Duration.ofSeconds(kvTransferTimeoutSeconds).dividedBy(3)).start(workerOptions.host, grpcPort, metricsPort);
        } catch (Exception e) {
            ShutdownHook.closeAll(transport, backend, model);
            throw e;
        }
        // The engine releases the handles it still holds as it closes, through the transport.
        ShutdownHook hook = ShutdownHook.install(worker, transport, backend, model);
        String host = workerOptions.host;
        System.err.printf("tandem: model %s, %d compute threads, KV load failure policy %s%n", model.id(),
                engineOptions.threadCount(), kvLoadFailurePolicy);
        // Tests and scripts wait for this exact line (and read the ports from it).
        System.out.printf("tandem: decode worker %s serving grpc %s:%d metrics http://%s:%d%n", worker.workerId(), host,
                worker.grpcPort(), host, worker.metricsPort());
        System.out.flush();
        hook.awaitStopped();
        return 0;
    }
}
