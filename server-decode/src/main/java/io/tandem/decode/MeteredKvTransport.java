package io.tandem.decode;

import io.tandem.kvcache.KvCacheStorage;
import io.tandem.kvcache.KvHandle;
import io.tandem.kvcache.transfer.KvTransferException;
import io.tandem.kvcache.transfer.KvTransport;
import io.tandem.metrics.KvTransferMetrics;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeoutException;

/**
 * Counts every pull of the wrapped transport in {@link KvTransferMetrics}: a completed pull's
 * bytes, pages and duration, a failed pull's reason. A pull cancelled by its requester (the
 * request ended) is neither. Renewals and releases pass through.
 */
final class MeteredKvTransport implements KvTransport {
    private final KvTransport delegate;
    private final KvTransferMetrics metrics;

    MeteredKvTransport(KvTransport delegate, KvTransferMetrics metrics) {
        this.delegate = delegate;
        this.metrics = metrics;
    }

    @Override
    public CompletableFuture<Void> pull(KvHandle handle, KvCacheStorage dst, int[] dstBlockIds) {
        long start = System.nanoTime();
        CompletableFuture<Void> pull;
        try {
            pull = delegate.pull(handle, dst, dstBlockIds);
        } catch (RuntimeException e) {
            metrics.recordFailure(reason(e));
            throw e;
        }
        // Recorded on whatever thread completes the pull; the caller polls the same future.
        pull.whenComplete((ignored, failure) -> {
            if (failure == null) {
                metrics.recordPull(handle.byteSize(), handle.numPages(), System.nanoTime() - start);
            } else if (!(failure instanceof CancellationException)) {
                metrics.recordFailure(reason(failure));
            }
        });
        return pull;
    }

    @Override
    public void renew(KvHandle handle) {
        delegate.renew(handle);
    }

    @Override
    public void release(KvHandle handle) {
        delegate.release(handle);
    }

    /** The failure's label: the data plane's status, {@code timeout}, or {@code internal}. */
    static String reason(Throwable failure) {
        Throwable cause = failure instanceof CompletionException && failure.getCause() != null ? failure.getCause() : failure;
        if (cause instanceof KvTransferException transfer) {
            return transfer.status().name().toLowerCase(java.util.Locale.ROOT);
        }
        if (cause instanceof TimeoutException) {
            return "timeout";
        }
        return "internal";
    }
}
