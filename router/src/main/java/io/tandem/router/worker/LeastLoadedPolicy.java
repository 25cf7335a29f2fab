package io.tandem.router.worker;

import java.util.List;

/**
 * The least busy worker of each pool ({@code least_loaded}), ignoring prefix caches: for prefill
 * the fewest queued prefill tokens (as last reported, corrected by the prompts this router has
 * sent the worker and seen prefilled: {@link InFlightCounter#estimate}), ties going to fewer waiting sequences;
 * for decode see {@link DecodeBalancer}. Equal workers take turns.
 */
public final class LeastLoadedPolicy extends LoadAwarePolicy {
    private final CheapestWorker prefill = new CheapestWorker();

    @Override
    public PrefillRoute choosePrefill(List<PrefillWorkerClient> workers, int[] promptTokens, String cacheSalt) {
        PrefillWorkerClient w = prefill.choose(workers, x -> {
            WorkerLoad load = x.load();
            // waiting sequences in [0, 1): a tie-break under one token
            return queuedPrefillTokens(x) + (double) load.numWaiting() / (load.numWaiting() + 1);
        });
        if (w == null) {
            return null;
        }
        prefillTokens.started(w, promptTokens.length);
        return new PrefillRoute(w, promptTokens.length, System.nanoTime());
    }
}
