package io.tandem.router.worker;

import io.tandem.kvcache.BlockHasher;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Prefix-cache-aware routing ({@code kv_aware}, the default), after the cost of NVIDIA Dynamo's KV
 * router ({@code overlap_score_weight × prefill blocks + active blocks}). The prefill worker chosen
 * is the healthy one of least
 *
 * <pre>
 *   cost = overlapWeight × uncachedPrefillTokens + queuedPrefillTokens
 * </pre>
 *
 * where {@code uncachedPrefillTokens} is the prompt less its longest leading run of full blocks the
 * worker holds (the uncached prefill blocks, counted in tokens so both terms share a unit), and
 * {@code queuedPrefillTokens} is what the worker last reported less the prefills this router saw
 * end since, or the prefill tokens this router has sent it and not seen prefilled, whichever is
 * more ({@link InFlightCounter#estimate}). The run is found by hashing the prompt
 * with the workers' own {@link BlockHasher} (the worker's reported block size, the model id, the
 * request's cache salt) and looking each hash up in the worker's reported {@code
 * cached_block_hashes} and in the prefixes this router sent it in the last seconds ({@link
 * RoutedPrefixes}). As on the worker, at most {@code (promptLength − 1) / blockSize} blocks can
 * hit. With weight 1 the cost is the prefill work the worker has to do before this request's
 * first token; a larger weight favours cache hits over balance, 0 ignores the cache. A worker
 * holding the prefix thus keeps getting it until its queue is longer than the work the cache
 * saves, then requests spread. Equal costs take turns. Decode: {@link DecodeBalancer}.
 */
public final class KvAwarePolicy extends LoadAwarePolicy {
    /** Default {@link #overlapWeight()}: one queued token weighs as much as one uncached one. */
    public static final double DEFAULT_OVERLAP_WEIGHT = 1.0;

    private final String modelId;
    private final double overlapWeight;
    private final CheapestWorker prefill = new CheapestWorker();
    private final ConcurrentHashMap<PrefillWorkerClient, RoutedPrefixes> routed = new ConcurrentHashMap<>();

    /**
     * @param modelId       the served model's id, part of every block hash (the workers' {@code model.id()})
     * @param overlapWeight weight of an uncached prefill token against a queued one; >= 0
     * @throws IllegalArgumentException if the weight is negative or not finite
     */
    public KvAwarePolicy(String modelId, double overlapWeight) {
        if (!(overlapWeight >= 0) || Double.isInfinite(overlapWeight)) {
            throw new IllegalArgumentException("overlap weight must be a finite number >= 0, got " + overlapWeight);
        }
        this.modelId = modelId;
        this.overlapWeight = overlapWeight;
    }

    public double overlapWeight() {
        return overlapWeight;
    }

    @Override
    public void workerRemoved(WorkerClient worker) {
        super.workerRemoved(worker);
        routed.remove(worker);
    }

    @Override
    public PrefillRoute choosePrefill(List<PrefillWorkerClient> workers, int[] promptTokens, String cacheSalt) {
        PromptBlocks prompt = new PromptBlocks(promptTokens, cacheSalt);
        long now = System.nanoTime();
        PrefillWorkerClient w = prefill.choose(workers, x -> overlapWeight * uncachedTokens(x, prompt, now)
                + queuedPrefillTokens(x));
        if (w == null) {
            return null;
        }
        long uncached = uncachedTokens(w, prompt, now);
        prefillTokens.started(w, uncached);
        int blockSize = w.load().cachedBlockHashes().blockSize();
        if (blockSize > 0) {
            long[] hashes = prompt.hashes(blockSize);
            routed.computeIfAbsent(w, k -> new RoutedPrefixes()).remember(hashes, hashes.length, now);
        }
        return new PrefillRoute(w, uncached, now);
    }

    /**
     * Prompt tokens the worker would have to compute: the prompt less the leading blocks it holds
     * or was recently sent.
     */
    long uncachedTokens(PrefillWorkerClient worker, PromptBlocks prompt, long nowNanos) {
        WorkerLoad load = worker.load();
        int blockSize = load.cachedBlockHashes().blockSize();
        int length = prompt.tokens.length;
        if (blockSize <= 0 || length == 0) {
            return length;
        }
        long[] hashes = prompt.hashes(blockSize);
        int maxHits = Math.min(hashes.length, (length - 1) / blockSize);
        RoutedPrefixes sent = routed.get(worker);
        int hits = 0;
        while (hits < maxHits && (load.cachedBlockHashes().contains(hashes[hits])
                || (sent != null && sent.contains(hashes[hits], nowNanos)))) {
            hits++;
        }
        return length - (long) hits * blockSize;
    }

    /** One prompt's full-block hashes, computed once per block size seen (workers normally share one). */
    final class PromptBlocks {
        final int[] tokens;
        private final String cacheSalt;
        private int blockSize;
        private long[] hashes;

        PromptBlocks(int[] tokens, String cacheSalt) {
            this.tokens = tokens;
            this.cacheSalt = cacheSalt;
        }

        long[] hashes(int size) {
            if (hashes == null || blockSize != size) {
                BlockHasher hasher = new BlockHasher(size, modelId);
                long[] out = new long[tokens.length / size];
                hasher.hashFullBlocks(tokens, tokens.length, hasher.extraHash(cacheSalt), out);
                hashes = out;
                blockSize = size;
            }
            return hashes;
        }
    }
}
