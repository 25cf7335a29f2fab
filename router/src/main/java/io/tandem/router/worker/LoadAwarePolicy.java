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

    /** A worker's queued prefill tokens: as last reported, or as we count them, whichever is more. */
    final long queuedPrefillTokens(PrefillWorkerClient worker) {
        return Math.max(worker.load().queuedPrefillTokens(), prefillTokens.get(worker));
    }

    @Override
    public final void prefillEnded(PrefillRoute route) {
        prefillTokens.add(route.worker(), -route.numPrefillTokens());
    }

    @Override
    public final DecodeWorkerClient chooseDecode(List<DecodeWorkerClient> workers) {
        return decode.choose(workers);
    }

    @Override
    public final void decodeEnded(DecodeWorkerClient worker) {
        decode.ended(worker);
    }
}
