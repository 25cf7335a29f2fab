package io.tandem.app;

import io.tandem.control.HostPort;
import io.tandem.engine.model.LlamaModel;
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
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

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
     * @param prefillTimeout deadline of each {@code Prefill} call
     * @param decodeTimeout  deadline of each {@code Decode} call (a whole generation)
     */
    RemoteDeployment(LlamaModel model, List<HostPort> prefill, List<HostPort> decode, RoutingPolicy routing,
                     int maxInFlight, ServingMetrics metrics, Duration prefillTimeout, Duration decodeTimeout) {
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
                maxInFlight, metrics);
    }

    /**
     * Waits until every worker has been polled once (or {@code timeout} passed).
     *
     * @return {@code host:port (state)} of each worker that is not healthy, for the log
     */
    List<String> awaitFirstPolls(Duration timeout) throws InterruptedException {
        List<CompletableFuture<Void>> polls = new ArrayList<>();
        prefillClients.forEach(c -> polls.add(c.firstPoll()));
        decodeClients.forEach(c -> polls.add(c.firstPoll()));
        try {
            CompletableFuture.allOf(polls.toArray(CompletableFuture[]::new)).get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException | java.util.concurrent.ExecutionException e) {
            // reported below, worker by worker
        }
        List<String> unhealthy = new ArrayList<>();
        prefillClients.stream().filter(c -> !c.load().healthy()).forEach(c -> unhealthy.add("prefill " + c.target()));
        decodeClients.stream().filter(c -> !c.load().healthy()).forEach(c -> unhealthy.add("decode " + c.target()));
        return unhealthy;
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
