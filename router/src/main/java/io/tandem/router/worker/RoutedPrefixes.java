package io.tandem.router.worker;

import io.tandem.kvcache.CachedBlockHashes;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The block hashes this router recently sent to one prefill worker (Dynamo's router does the
 * same), so that a burst of requests sharing a prefix sticks to the worker that is computing it
 * before its load report lists the blocks. An entry lasts {@link #TTL}: long enough for a few
 * load polls to carry the real hashes, short enough that a prefix the worker never cached (a
 * failed prefill) is soon forgotten. Holds at most {@link CachedBlockHashes#MAX_HASHES} entries,
 * the oldest dropped first. Thread-safe.
 */
final class RoutedPrefixes {
    static final Duration TTL = Duration.ofSeconds(2);

    private final Map<Long, Long> expiryNanos = new LinkedHashMap<>(64, 0.75f, false) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Long, Long> eldest) {
            return size() > CachedBlockHashes.MAX_HASHES;
        }
    };

    /** Remembers {@code hashes[0, n)} as sent at {@code nowNanos}. */
    synchronized void remember(long[] hashes, int n, long nowNanos) {
        long expiry = nowNanos + TTL.toNanos();
        for (int i = 0; i < n; i++) {
            expiryNanos.remove(hashes[i]);
            expiryNanos.put(hashes[i], expiry);
        }
    }

    /** Whether {@code hash} was sent within the last {@link #TTL} before {@code nowNanos}. */
    synchronized boolean contains(long hash, long nowNanos) {
        Long expiry = expiryNanos.get(hash);
        if (expiry == null) {
            return false;
        }
        if (expiry - nowNanos <= 0) {
            expiryNanos.remove(hash);
            return false;
        }
        return true;
    }
}
