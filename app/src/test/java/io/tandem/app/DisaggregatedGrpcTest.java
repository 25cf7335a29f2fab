package io.tandem.app;

import static org.assertj.core.api.Assertions.assertThat;

import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.tandem.control.HostPort;
import io.tandem.decode.DecodeWorker;
import io.tandem.decode.KvSourceDirectory;
import io.tandem.engine.EngineConfig;
import io.tandem.engine.EngineStats;
import io.tandem.engine.FinishReason;
import io.tandem.engine.InProcessKvTransport;
import io.tandem.engine.ReferenceModel;
import io.tandem.engine.backend.CpuBackend;
import io.tandem.engine.model.GgufModelLoader;
import io.tandem.engine.model.LlamaModel;
import io.tandem.engine.sampling.SamplingParams;
import io.tandem.kvcache.KvDtype;
import io.tandem.kvcache.transfer.NettyKvTransport;
import io.tandem.prefill.PrefillWorker;
import io.tandem.router.CompletionRequest;
import io.tandem.router.GenerationListener;
import io.tandem.router.GenerationStream;
import io.tandem.router.KvTransferMode;
import io.tandem.router.ServingMetrics;
import io.tandem.router.Usage;
import io.tandem.router.worker.GrpcDecodeWorkerClient;
import io.tandem.router.worker.KvAddressBook;
import io.tandem.router.worker.RoundRobinPolicy;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The disaggregated path over the real control and data planes in one JVM: a prefill worker and a
 * decode worker serving gRPC on loopback, the decode worker pulling KV pages from the prefill
 * worker's page server over TCP ({@link NettyKvTransport}, address learned from the handles), and a
 * router reaching both through the gRPC worker clients: everything of a multi-process deployment
 * but the processes. The router runs the default of {@code tandem router}: the decode worker starts
 * on the prefill's early handle ({@link KvTransferMode#OVERLAP}).
 */
@Timeout(120)
class DisaggregatedGrpcTest {
    private static LlamaModel model;
    private static CpuBackend backend;
    private static PrefillWorker prefill;
    private static NettyKvTransport transport;
    private static DecodeWorker decode;
    private static RemoteDeployment remote;

    @BeforeAll
    static void start() throws Exception {
        model = GgufModelLoader.load(ReferenceModel.ggufPath(), 0);
        backend = new CpuBackend(2);
        // 8 prompt tokens a step: a long prompt takes a hundred steps, so a cancel lands mid-prefill
        EngineConfig prefillConfig = new EngineConfig(16, KvDtype.F32, 64L << 20, 8, 8, 1024, Duration.ofSeconds(30));
        EngineConfig decodeConfig = new EngineConfig(16, KvDtype.F32, 64L << 20, 8, 64, 1024, Duration.ofSeconds(30));
        prefill = new PrefillWorker(model, backend, prefillConfig, "prefill-0").start("127.0.0.1", "127.0.0.1", 0, 0, 0);
        KvSourceDirectory directory = new KvSourceDirectory();
        transport = new NettyKvTransport(directory::resolve, Duration.ofSeconds(10), 64 << 20, 1);
        decode = new DecodeWorker(model, backend, decodeConfig, "decode-0", transport, directory).start("127.0.0.1", 0, 0);
        remote = new RemoteDeployment(model, List.of(new HostPort("127.0.0.1", prefill.grpcPort())),
                List.of(new HostPort("127.0.0.1", decode.grpcPort())), List.of(), Duration.ofSeconds(5),
                new RoundRobinPolicy(), KvTransferMode.OVERLAP, 64,
                new ServingMetrics(new PrometheusRegistry(), model.id()), Duration.ofSeconds(30), Duration.ofSeconds(60));
        assertThat(remote.awaitHealthy(Duration.ofSeconds(10))).as("unhealthy workers").isEmpty();
    }

    @AfterAll
    static void stop() {
        ShutdownHook.closeAll(remote, decode, transport, prefill, backend, model);
    }

    @AfterEach
    void everyBlockFreeOnBothSides() throws Exception {
        await(Duration.ofSeconds(10), "every KV block free on both sides", () -> {
            EngineStats p = prefill.engine().stats();
            EngineStats d = decode.engine().stats();
            return p.numExported() == 0 && p.numRunning() + p.numWaiting() == 0 && p.numFreeBlocks() == p.numTotalBlocks()
                    && d.numRunning() + d.numWaiting() == 0 && d.numFreeBlocks() == d.numTotalBlocks();
        });
        assertThat(remote.router.numInFlight()).isZero();
    }

    @Test
    void shouldGenerateTheReferenceGreedyTokensThroughBothWorkers() throws Exception {
        long kvBytesBefore = prefill.kvPayloadBytesSent();
        for (ReferenceModel.Case c : ReferenceModel.cases()) {
            int n = Math.min(c.generatedTokenIds().length, 64);
            Output out = generate(c.name(), c.promptTokenIds(), SamplingParams.greedy(n)).get(60, TimeUnit.SECONDS);
            assertThat(out.tokens()).as(c.name()).containsExactly(prefix(c.generatedTokenIds(), n));
            assertThat(out.finish()).isEqualTo(FinishReason.LENGTH);
        }
        assertThat(prefill.kvPayloadBytesSent() - kvBytesBefore).as("KV bytes pulled over the data plane").isPositive();
        assertThat(remote.prefillPool.members().getFirst().workerId()).isEqualTo("prefill-0");
        assertThat(remote.decodePool.members().getFirst().workerId()).isEqualTo("decode-0");
    }

    @Test
    void shouldGenerateTheReferenceTokensForConcurrentRequests() throws Exception {
        List<ReferenceModel.Case> cases = ReferenceModel.cases();
        List<CompletableFuture<Output>> outputs = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            ReferenceModel.Case c = cases.get(i % cases.size());
            outputs.add(generate(c.name() + "-" + i, c.promptTokenIds(), SamplingParams.greedy(32)));
        }
        for (int i = 0; i < outputs.size(); i++) {
            ReferenceModel.Case c = cases.get(i % cases.size());
            assertThat(outputs.get(i).get(60, TimeUnit.SECONDS).tokens()).as(c.name() + "-" + i)
                    .containsExactly(prefix(c.generatedTokenIds(), 32));
        }
    }

    @Test
    void shouldPropagateACancelDuringDecodeToTheDecodeWorkerAndReleaseTheLease() throws Exception {
        Listener listener = new Listener();
        GenerationStream stream = remote.router.generate(new CompletionRequest("cancel-decode", null, null,
                ReferenceModel.cases().get(1).promptTokenIds(), new SamplingParams(0f, 1f, -1, 1000, null, List.of(), true)),
                listener);
        await(Duration.ofSeconds(10), "decoding", () -> decode.engine().stats().numRunning() == 1 && listener.tokens.size() > 2);
        stream.cancel();
        assertThat(listener.done.get(10, TimeUnit.SECONDS).finish()).isEqualTo(FinishReason.ABORT);
        assertThat(listener.tokens.size()).isLessThan(1000);
    }

    @Test
    void shouldPropagateACancelDuringPrefillToThePrefillWorker() throws Exception {
        int[] story = ReferenceModel.cases().get(0).generatedTokenIds();
        int[] prompt = new int[Math.min(1000, model.config().contextLength() - 100)];
        prompt[0] = model.tokenizer().bosId();
        for (int i = 1; i < prompt.length; i++) {
            prompt[i] = story[i % story.length];
        }
        Listener listener = new Listener();
        GenerationStream stream = remote.router.generate(new CompletionRequest("cancel-prefill", null, null, prompt,
                SamplingParams.greedy(16)), listener);
        await(Duration.ofSeconds(10), "prefilling", () -> prefill.engine().stats().numRunning() == 1);
        stream.cancel();
        assertThat(listener.done.get(10, TimeUnit.SECONDS).finish()).isEqualTo(FinishReason.ABORT);
        assertThat(listener.tokens).isEmpty();
    }

    @Test
    void shouldMarkAWorkerThatGoesAwayUnhealthyWithinTwoSecondsAndHealthyWhenItIsBack() throws Exception {
        ScheduledExecutorService scheduler = Executors.newSingleThreadScheduledExecutor();
        EngineConfig config = new EngineConfig(16, KvDtype.F32, 16L << 20, 2, 16, 1024, Duration.ofSeconds(30));
        DecodeWorker spare = new DecodeWorker(model, backend, config, "decode-spare", new InProcessKvTransport(prefill.engine()),
                new KvSourceDirectory()).start("127.0.0.1", 0, 0);
        int port = spare.grpcPort();
        try (GrpcDecodeWorkerClient client = new GrpcDecodeWorkerClient(new HostPort("127.0.0.1", port), new KvAddressBook(),
                scheduler, Duration.ofSeconds(10))) {
            await(Duration.ofSeconds(5), "healthy", () -> client.load().healthy());
            assertThat(client.load().numTotalBlocks()).isEqualTo(spare.engine().stats().numTotalBlocks());

            spare.close();
            long gone = System.nanoTime();
            await(Duration.ofSeconds(5), "unhealthy", () -> !client.load().healthy());
            assertThat(Duration.ofNanos(System.nanoTime() - gone)).isLessThan(Duration.ofMillis(2_500));

            spare = new DecodeWorker(model, backend, config, "decode-spare", new InProcessKvTransport(prefill.engine()),
                    new KvSourceDirectory()).start("127.0.0.1", port, 0);
            await(Duration.ofSeconds(5), "healthy again", () -> client.load().healthy());
        } finally {
            spare.close();
            scheduler.shutdownNow();
        }
    }

    private static CompletableFuture<Output> generate(String id, int[] prompt, SamplingParams sampling) {
        Listener listener = new Listener();
        remote.router.generate(new CompletionRequest(id, null, null, prompt, sampling), listener);
        return listener.done;
    }

    private static Integer[] prefix(int[] ids, int n) {
        Integer[] out = new Integer[n];
        for (int i = 0; i < n; i++) {
            out[i] = ids[i];
        }
        return out;
    }

    private record Output(List<Integer> tokens, FinishReason finish) {}

    /** Collects a request's token ids and how it ended. */
    private static final class Listener implements GenerationListener {
        final List<Integer> tokens = new CopyOnWriteArrayList<>();
        final CompletableFuture<Output> done = new CompletableFuture<>();

        @Override
        public void onOutput(int[] tokenIds, String textDelta) {
            for (int t : tokenIds) {
                tokens.add(t);
            }
        }

        @Override
        public void onFinish(FinishReason reason, Usage usage) {
            done.complete(new Output(List.copyOf(tokens), reason));
        }

        @Override
        public void onError(Throwable error) {
            done.completeExceptionally(error);
        }
    }

    private static void await(Duration timeout, String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("not " + what + " after " + timeout + ": prefill " + prefill.engine().stats()
                        + ", decode " + decode.engine().stats());
            }
            Thread.sleep(5);
        }
    }
}
