package io.tandem.app;

import io.tandem.decode.DecodeWorker;
import io.tandem.decode.KvSourceDirectory;
import io.tandem.engine.backend.CpuBackend;
import io.tandem.engine.model.LlamaModel;
import io.tandem.kvcache.KvCacheStorage;
import io.tandem.kvcache.KvHandle;
import io.tandem.kvcache.transfer.KvTransport;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code tandem decode}: one decode worker process (gRPC {@code tandem.v1.DecodeWorker} + health,
 * {@code /metrics}) until SIGINT/SIGTERM, then a graceful shutdown.
 */
@Command(name = "decode", mixinStandardHelpOptions = true,
        description = "Run a decode worker: pulls prompts' KV from prefill workers and generates.")
final class DecodeCommand implements Callable<Integer> {
    @Mixin
    ModelOptions modelOptions = new ModelOptions();

    @Mixin
    EngineOptions engineOptions = new EngineOptions();

    @Mixin
    WorkerOptions workerOptions = new WorkerOptions();

    @Option(names = "--grpc-port", paramLabel = "PORT", defaultValue = "50071", description = "gRPC control-plane port (0 = any free). Default: ${DEFAULT-VALUE}.")
    int grpcPort;

    @Option(names = "--metrics-port", paramLabel = "PORT", defaultValue = "8071", description = "HTTP /metrics port (0 = any free). Default: ${DEFAULT-VALUE}.")
    int metricsPort;

    @Override
    public Integer call() throws Exception {
        LlamaModel model = modelOptions.load();
        CpuBackend backend = new CpuBackend(engineOptions.threadCount());
        KvSourceDirectory directory = new KvSourceDirectory();
        DecodeWorker worker;
        try {
            worker = new DecodeWorker(model, backend, engineOptions.toConfig(), workerOptions.workerId("decode", grpcPort),
                    new NoKvDataPlane(), directory).start(workerOptions.host, grpcPort, metricsPort);
        } catch (Exception e) {
            ShutdownHook.closeAll(backend, model);
            throw e;
        }
        ShutdownHook hook = ShutdownHook.install(worker, backend, model);
        String host = workerOptions.host;
        System.err.printf("tandem: model %s, %d compute threads%n", model.id(), engineOptions.threadCount());
        // Tests and scripts wait for this exact line (and read the ports from it).
        System.out.printf("tandem: decode worker %s serving grpc %s:%d metrics http://%s:%d%n", worker.workerId(), host,
                worker.grpcPort(), host, worker.metricsPort());
        System.out.flush();
        hook.awaitStopped();
        return 0;
    }

    /**
     * Stands in for the Netty KV transport until the data plane is part of the build: every pull
     * fails with a clear error (the request ends, its handle is released), so a decode process
     * can be started, health-checked and routed to, but cannot generate yet.
     */
    private static final class NoKvDataPlane implements KvTransport {
        @Override
        public CompletableFuture<Void> pull(KvHandle handle, KvCacheStorage dst, int[] dstBlockIds) {
            return CompletableFuture.failedFuture(new UnsupportedOperationException(
                    "this build has no KV data plane: a decode process cannot pull KV from prefill worker " + handle.workerId()));
        }

        @Override
        public void release(KvHandle handle) {}
    }
}
