package io.tandem.kvcache.transfer;

import io.netty.util.concurrent.ScheduledFuture;
import io.tandem.kvcache.KvCacheStorage;
import io.tandem.kvcache.KvHandle;
import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;

/**
 * Client-side state of one pull: where its pages go and how far it got. Built on the caller's
 * thread, then confined to the peer connection's event loop, except for its {@link PullFuture},
 * which anyone may complete or cancel.
 */
final class InboundPull {
    final long requestId;
    final KvHandle handle;
    final KvCacheStorage dst;
    final int[] dstBlockIds;
    final int layerFrom;
    final int layerTo;
    final InetSocketAddress address;
    /**
     * {@link System#nanoTime()} at which the pull fails with a timeout: the transfer timeout after
     * the call, pushed back by each page run received (event loop only).
     */
    long deadlineNanos;
    final PullFuture future = new PullFuture();
    /** Pages copied and CRC-checked so far. */
    int pagesReceived;
    /** The timeout task, once submitted; cancelled when the pull completes. */
    ScheduledFuture<?> timeout;

    InboundPull(long requestId, KvHandle handle, KvCacheStorage dst, int[] dstBlockIds, int layerFrom, int layerTo,
            InetSocketAddress address, long deadlineNanos) {
        this.requestId = requestId;
        this.handle = handle;
        this.dst = dst;
        this.dstBlockIds = dstBlockIds.clone();
        this.layerFrom = layerFrom;
        this.layerTo = layerTo;
        this.address = address;
        this.deadlineNanos = deadlineNanos;
    }

    /** Pages the pull covers: layers × blocks. */
    int expectedPages() {
        return (layerTo - layerFrom) * handle.blockIds().length;
    }

    long pageBytes() {
        return handle.spec().pageBytes();
    }

    /**
     * Copies {@code src} (position to limit, which stay as they are) into destination page
     * {@code (layer, dstBlockIds[index])} at {@code offsetInPage}, unless the future is already
     * complete: after completion not a byte more is written into {@code dst}, since its owner may
     * hand those blocks to another sequence at once.
     *
     * @return false if nothing was written because the pull is complete
     */
    boolean write(int layer, int index, long offsetInPage, ByteBuffer src) {
        synchronized (future.writeLock) {
            if (future.sealed || future.isDone()) {
                return false;
            }
            MemorySegment.copy(MemorySegment.ofBuffer(src), 0, dst.layer(layer),
                    dst.pageOffset(dstBlockIds[index]) + offsetInPage, src.remaining());
            return true;
        }
    }

    /** Names the pull for error messages. */
    String describe() {
        return "KV pull " + requestId + " of lease " + handle.leaseId() + " (epoch " + handle.epoch()
                + ") from worker " + handle.workerId() + " at " + address + ", layers [" + layerFrom + ", "
                + layerTo + ")";
    }

    /**
     * The future handed to the caller. Every way of completing it first seals the pull under the
     * write lock, so that a completion (a cancel on the engine thread, say) never races with a copy
     * into the destination on the event loop.
     */
    static final class PullFuture extends CompletableFuture<Void> {
        private final Object writeLock = new Object();
        private boolean sealed;

        private void seal() {
            synchronized (writeLock) {
                sealed = true;
            }
        }

        @Override
        public boolean complete(Void value) {
            seal();
            return super.complete(value);
        }

        @Override
        public boolean completeExceptionally(Throwable ex) {
            seal();
            return super.completeExceptionally(ex);
        }

        @Override
        public boolean cancel(boolean mayInterruptIfRunning) {
            seal();
            return super.cancel(mayInterruptIfRunning);
        }

        @Override
        public void obtrudeValue(Void value) {
            seal();
            super.obtrudeValue(value);
        }

        @Override
        public void obtrudeException(Throwable ex) {
            seal();
            super.obtrudeException(ex);
        }

        @Override
        public <U> CompletableFuture<U> newIncompleteFuture() {
            return new CompletableFuture<>();
        }
    }
}
