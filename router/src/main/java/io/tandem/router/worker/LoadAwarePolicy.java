package io.tandem.router.worker;

import java.util.List;

/**
 * What the load-aware policies ({@code least_loaded}, {@code kv_aware}) share: the prefill tokens
 * this router has sent each prefill worker and not seen prefilled ({@link #prefillTokens}, charged
 * by the subclass's {@link #choosePrefill}), and the decode choice ({@link DecodeBalancer}).
 */
abstract sealed class LoadAwarePolicy implements RoutingPolicy permits LeastLoadedPolicy, KvAwarePolicy {
    final InFlightCounter prefillTokens = new InFlightCounter();
    private final DecodeBalancer decode = new DecodeBalancer();

    /** A worker's queued prefill tokens, its report corrected by what we sent and saw end ({@link InFlightCounter#estimate}). */
    final long queuedPrefillTokens(PrefillWorkerClient worker) {
        WorkerLoad load = worker.load();
        return prefillTokens.estimate(worker, load.queuedPrefillTokens(), load.asOfNanos());
    }

    @Override
    public final void prefillEnded(PrefillRoute route) {
        prefillTokens.ended(route.worker(), route.numPrefillTokens(), route.startedNanos());
    }

    @Override
    public final DecodeWorkerClient chooseDecode(List<DecodeWorkerClient> workers) {
        return decode.choose(workers);
    }

    @Override
    public final void decodeEnded(DecodeWorkerClient worker) {
        decode.ended(worker);
    }

    @Override
    public void workerRemoved(WorkerClient worker) {
        prefillTokens.forget(worker);
        decode.forget(worker);
    }
}
