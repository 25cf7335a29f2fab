package io.tandem.app;

import io.tandem.control.HostPort;
import io.tandem.engine.model.LlamaModel;
import io.tandem.router.KvTransferMode;
import io.tandem.router.Router;
import io.tandem.router.ServingMetrics;
import io.tandem.router.template.ChatTemplates;
import io.tandem.router.worker.DecodeWorkerClient;
import io.tandem.router.worker.GrpcDecodeWorkerClient;
import io.tandem.router.worker.GrpcPrefillWorkerClient;
import io.tandem.router.worker.KvAddressBook;
import io.tandem.router.worker.PrefillWorkerClient;
import io.tandem.router.worker.RoutingPolicy;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;

/**
 * A router in front of remote prefill and decode workers ({@code tandem router}): gRPC worker
 * clients sharing one poll scheduler and one {@link KvAddressBook}. Closes in reverse order of
 * construction (router, decode clients, prefill clients, scheduler); the model is the caller's.
 */
final class RemoteDeployment implements AutoCloseable {
    final Router router;
    final List<GrpcPrefillWorkerClient> prefillClients = new ArrayList<>();
    final List<GrpcDecodeWorkerClient> decodeClients = new ArrayList<>();
    private final ScheduledExecutorService scheduler = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "tandem-worker-polls");
        t.setDaemon(true);
        return t;
    });
    private boolean closed;

    /**
     * @param model          tokenizer, chat template and limits of the served model (the workers must serve the same file)
     * @param transferMode   when decode workers start pulling: after the prefill, or overlapping it
     * @param prefillTimeout deadline of each {@code Prefill} call
     * @param decodeTimeout  deadline of each {@code Decode} call (a whole generation)
     */
    RemoteDeployment(LlamaModel model, List<HostPort> prefill, List<HostPort> decode, RoutingPolicy routing,
                     KvTransferMode transferMode, int maxInFlight, ServingMetrics metrics, Duration prefillTimeout, Duration decodeTimeout) {
        KvAddressBook addresses = new KvAddressBook();
        for (HostPort p : prefill) {
            prefillClients.add(new GrpcPrefillWorkerClient(p, addresses, scheduler, prefillTimeout));
        }
        for (HostPort d : decode) {
            decodeClients.add(new GrpcDecodeWorkerClient(d, addresses, scheduler, decodeTimeout));
        }
        String bos = model.tokenizer().bosId() >= 0 ? model.tokenizer().tokenText(model.tokenizer().bosId()) : "";
        this.router = new Router(model, ChatTemplates.forTemplate(model.chatTemplate(), bos),
                List.<PrefillWorkerClient>copyOf(prefillClients), List.<DecodeWorkerClient>copyOf(decodeClients), routing,
                transferMode, maxInFlight, metrics);
    }

    /**
     * Waits until every worker has answered a load poll as healthy, or {@code timeout} passed.
     *
     * @return {@code role host:port} of each worker that is not healthy, for the log
     */
    List<String> awaitHealthy(Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        List<String> unhealthy = unhealthy();
        while (!unhealthy.isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(20);
            unhealthy = unhealthy();
        }
        return unhealthy;
    }

    private List<String> unhealthy() {
        List<String> out = new ArrayList<>();
        prefillClients.stream().filter(c -> !c.load().healthy()).forEach(c -> out.add("prefill " + c.target()));
        decodeClients.stream().filter(c -> !c.load().healthy()).forEach(c -> out.add("decode " + c.target()));
        return out;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        router.close();
        decodeClients.forEach(GrpcDecodeWorkerClient::close);
        prefillClients.forEach(GrpcPrefillWorkerClient::close);
        scheduler.shutdownNow();
    }
}
