package io.tandem.kvcache.transfer;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.tandem.kvcache.KvCacheStorage;
import io.tandem.kvcache.LayerProgress;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.concurrent.RejectedExecutionException;
import java.util.zip.CRC32C;
import org.agrona.collections.Long2ObjectHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One data-plane connection on the server: decodes client frames (whole frames, cut by a
 * length-field decoder before it), validates pulls with the {@link KvPageProvider}, and sends page
 * runs round-robin over the ready pulls while the client's credit and the channel's writability
 * allow (see {@link KvFrame} for the protocol). Confined to the channel's event loop.
 *
 * <p>A pull of a lease whose prefill still computes (an early handle) gets each page once it is
 * final ({@link LayerProgress}); until then the pull waits off the queue, woken by the engine's
 * progress, never blocking the event loop. Its bound is the puller's transfer timeout (it cancels).
 *
 * <p>Payload bytes are never copied in Java: each run is a read-only {@link ByteBuf} view of the
 * storage's off-heap memory, written after a small pooled header; the transport gathers both
 * into one socket write. The view's memory belongs to the storage, so releasing it frees nothing.
 */
final class KvPageServerHandler extends ChannelInboundHandlerAdapter {
    private static final Logger LOG = LoggerFactory.getLogger(KvPageServerHandler.class);
    /** More credit than this outstanding is a broken client, not a big window. */
    private static final long MAX_CREDIT = 1L << 40;

    private final KvPageServer server;
    private final KvPageProvider provider;
    private final KvCacheStorage storage;
    private final long pageBytes;
    /** Most pages in one {@code PAGES} frame. */
    private final int maxRunPages;
    private final Long2ObjectHashMap<ServedPull> pulls = new Long2ObjectHashMap<>();
    /** Validated pulls with pages left, in round-robin order. */
    private final ArrayDeque<ServedPull> ready = new ArrayDeque<>();
    private final CRC32C crc = new CRC32C();
    /** Payload bytes the client still accepts. */
    private long credit;

    KvPageServerHandler(KvPageServer server, KvPageProvider provider, int maxFramePayloadBytes) {
        this.server = server;
        this.provider = provider;
        this.storage = provider.storage();
        this.pageBytes = storage.spec().pageBytes();
        this.maxRunPages = (int) Math.max(1, maxFramePayloadBytes / pageBytes);
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        ByteBuf frame = (ByteBuf) msg;
        try {
            onFrame(ctx, frame);
        } finally {
            frame.release();
        }
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
        if (ctx.channel().isWritable()) {
            pump(ctx);
        }
        ctx.fireChannelWritabilityChanged();
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
        server.countConnection(1);
        ctx.fireChannelActive();
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        server.countConnection(-1);
        for (ServedPull pull : pulls.values()) {
            pull.cancel();
        }
        pulls.clear();
        ready.clear();
        ctx.fireChannelInactive();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        LOG.warn("KV data-plane connection from {} failed; closing it", ctx.channel().remoteAddress(), cause);
        ctx.close();
    }

    private void onFrame(ChannelHandlerContext ctx, ByteBuf frame) {
        String bad = KvFrame.checkHeader(frame);
        if (bad != null) {
            protocolError(ctx, bad);
            return;
        }
        byte type = frame.getByte(KvFrame.TYPE_OFFSET);
        long requestId = frame.getLong(KvFrame.REQUEST_ID_OFFSET);
        int length = frame.readableBytes();
        switch (type) {
            case KvFrame.TYPE_PULL -> onPull(ctx, frame, requestId);
            case KvFrame.TYPE_CREDIT -> {
                if (length != KvFrame.CREDIT_LENGTH) {
                    protocolError(ctx, "CREDIT frame of " + length + " bytes");
                    return;
                }
                long bytes = frame.getLong(KvFrame.HEADER_LENGTH);
                if (bytes < 0 || credit + bytes > MAX_CREDIT) {
                    protocolError(ctx, "credit " + bytes + " on top of " + credit);
                    return;
                }
                credit += bytes;
                pump(ctx);
            }
            case KvFrame.TYPE_CANCEL -> {
                ServedPull pull = pulls.remove(requestId);
                if (pull != null) {
                    pull.cancel();
                }
            }
            case KvFrame.TYPE_RELEASE -> {
                if (length != KvFrame.RELEASE_LENGTH) {
                    protocolError(ctx, "RELEASE frame of " + length + " bytes");
                    return;
                }
                long epoch = frame.getLong(KvFrame.HEADER_LENGTH);
                long leaseId = frame.getLong(KvFrame.HEADER_LENGTH + 8);
                try {
                    provider.release(epoch, leaseId);
                } catch (RuntimeException e) {
                    // One lease's release must not take down the pulls sharing this connection.
                    LOG.warn("releasing KV lease {} (epoch {}) failed; it will expire", leaseId, epoch, e);
                }
            }
            case KvFrame.TYPE_RENEW -> {
                if (length != KvFrame.RENEW_LENGTH) {
                    protocolError(ctx, "RENEW frame of " + length + " bytes");
                    return;
                }
                long epoch = frame.getLong(KvFrame.HEADER_LENGTH);
                long leaseId = frame.getLong(KvFrame.HEADER_LENGTH + 8);
                try {
                    provider.renew(epoch, leaseId);
                } catch (RuntimeException e) {
                    LOG.warn("renewing KV lease {} (epoch {}) failed; it may expire", leaseId, epoch, e);
                }
            }
            default -> protocolError(ctx, "unexpected " + KvFrame.typeName(type) + " frame from a client");
        }
    }

    private void onPull(ChannelHandlerContext ctx, ByteBuf frame, long requestId) {
        int length = frame.readableBytes();
        int n = length >= KvFrame.PULL_FIXED_LENGTH ? frame.getInt(KvFrame.PULL_FIXED_LENGTH - 4) : -1;
        if (n < 0 || n > KvFrame.MAX_PULL_BLOCKS || length != KvFrame.PULL_FIXED_LENGTH + 4 * n) {
            protocolError(ctx, "PULL frame of " + length + " bytes for " + n + " blocks");
            return;
        }
        if (requestId == KvFrame.NO_REQUEST || pulls.containsKey(requestId)) {
            protocolError(ctx, "PULL reuses request id " + requestId);
            return;
        }
        int at = KvFrame.HEADER_LENGTH;
        long epoch = frame.getLong(at);
        long leaseId = frame.getLong(at + 8);
        long clientPageBytes = frame.getUnsignedInt(at + 16);
        int layerFrom = frame.getInt(at + 20);
        int layerTo = frame.getInt(at + 24);
        int[] blockIds = new int[n];
        for (int i = 0; i < n; i++) {
            blockIds[i] = frame.getInt(KvFrame.PULL_FIXED_LENGTH + 4 * i);
        }
        Rejection rejection = checkRange(clientPageBytes, layerFrom, layerTo, blockIds);
        if (rejection != null) {
            sendError(ctx, requestId, rejection.status(), rejection.message());
            return;
        }
        ServedPull pull = new ServedPull(requestId, epoch, leaseId, layerFrom, layerTo, blockIds);
        pulls.put(requestId, pull);
        try {
            provider.validate(epoch, leaseId, blockIds.clone()).whenComplete((status, failure) ->
                    runOnLoop(ctx, () -> onValidated(ctx, pull, status, failure)));
        } catch (RuntimeException e) {
            onValidated(ctx, pull, null, e);
        }
    }

    /** The range checks the server makes itself, before asking the provider; null if they pass. */
    private Rejection checkRange(long clientPageBytes, int layerFrom, int layerTo, int[] blockIds) {
        if (clientPageBytes != pageBytes) {
            return new Rejection(KvTransferStatus.PAGE_SIZE_MISMATCH,
                    "client pages are " + clientPageBytes + " bytes, this server's are " + pageBytes);
        }
        int numLayers = storage.spec().numLayers();
        if (layerFrom < 0 || layerTo > numLayers || layerFrom >= layerTo) {
            return new Rejection(KvTransferStatus.BAD_LAYER_RANGE,
                    "layers [" + layerFrom + ", " + layerTo + ") are not a range inside [0, " + numLayers + ")");
        }
        for (int i = 0; i < blockIds.length; i++) {
            if (blockIds[i] < 0 || blockIds[i] >= storage.numBlocks()) {
                return new Rejection(KvTransferStatus.BAD_BLOCK_ID, "block id " + blockIds[i] + " at index " + i
                        + " is outside [0, " + storage.numBlocks() + ")");
            }
        }
        return null;
    }

    private void onValidated(ChannelHandlerContext ctx, ServedPull pull, KvTransferStatus status, Throwable failure) {
        if (pull.cancelled()) {
            return;
        }
        if (failure != null || status == null) {
            pulls.remove(pull.requestId);
            sendError(ctx, pull.requestId, KvTransferStatus.INTERNAL, "lease check failed: " + failure);
        } else if (status != KvTransferStatus.OK) {
            pulls.remove(pull.requestId);
            sendError(ctx, pull.requestId, status, "lease " + pull.leaseId + " of epoch " + pull.epoch);
        } else {
            LayerProgress progress;
            try {
                progress = provider.progress(pull.epoch, pull.leaseId);
            } catch (RuntimeException e) {
                pulls.remove(pull.requestId);
                sendError(ctx, pull.requestId, KvTransferStatus.INTERNAL, "progress of lease " + pull.leaseId + ": " + e);
                return;
            }
            if (progress == null) {
                pulls.remove(pull.requestId);
                sendError(ctx, pull.requestId, KvTransferStatus.UNKNOWN_LEASE, "lease " + pull.leaseId + " of epoch "
                        + pull.epoch + " ended right after its check");
                return;
            }
            pull.setProgress(progress);
            ready.addLast(pull);
            pump(ctx);
        }
    }

    /**
     * Sends page runs, one per ready pull in turn, while the channel is writable and the credit
     * holds at least one page; a pull whose pages are all sent gets its {@code DONE}. A pull whose
     * next pages are not final yet (its prefill still computes them) leaves the queue until its
     * progress changes ({@link #park}); one whose prefill ended without them gets
     * {@link KvTransferStatus#PREFILL_ABORTED}.
     */
    private void pump(ChannelHandlerContext ctx) {
        boolean wrote = false;
        while (ctx.channel().isWritable() && !ready.isEmpty()) {
            ServedPull pull = ready.peekFirst();
            if (pull.cancelled()) {
                ready.pollFirst();
                continue;
            }
            if (!pull.finished()) {
                int layer = pull.nextReadyLayer();
                if (layer == ServedPull.NONE_READY) {
                    ready.pollFirst();
                    if (pull.progress().isFailed()) {
                        pulls.remove(pull.requestId);
                        ctx.write(KvFrame.error(ctx.alloc(), pull.requestId, KvTransferStatus.PREFILL_ABORTED, "lease "
                                + pull.leaseId + " of epoch " + pull.epoch
                                + ": its prefill ended before the pages asked for were computed"));
                        wrote = true;
                    } else {
                        park(ctx, pull);
                    }
                    continue;
                }
                if (credit < pageBytes) {
                    break;
                }
                int count = pull.nextRunLength(layer, (int) Math.min(maxRunPages, credit / pageBytes));
                writeRun(ctx, pull, layer, count);
                credit -= count * pageBytes;
                pull.advance(layer, count);
            }
            ready.pollFirst();
            if (pull.finished()) {
                pulls.remove(pull.requestId);
                ctx.write(KvFrame.done(ctx.alloc(), pull.requestId));
            } else {
                ready.addLast(pull);
            }
            wrote = true;
        }
        if (wrote) {
            ctx.flush();
        }
    }

    /**
     * Takes {@code pull} out of the round-robin until its prefill's progress changes; the wake-up
     * (on the engine thread) only hands {@link #unpark} to this event loop. Registering before the
     * re-check means a change in between is not missed.
     */
    private void park(ChannelHandlerContext ctx, ServedPull pull) {
        pull.parked = true;
        pull.progress().whenChanged(() -> runOnLoop(ctx, () -> unpark(ctx, pull)));
        if (pull.nextReadyLayer() != ServedPull.NONE_READY || pull.progress().isFailed()) {
            unpark(ctx, pull);
        }
    }

    private void unpark(ChannelHandlerContext ctx, ServedPull pull) {
        if (!pull.parked || pull.cancelled()) {
            return;
        }
        pull.parked = false;
        ready.addLast(pull);
        pump(ctx);
    }

    private void writeRun(ChannelHandlerContext ctx, ServedPull pull, int layer, int count) {
        long bytes = count * pageBytes;
        int index = pull.nextIndex(layer);
        MemorySegment run = storage.layer(layer).asSlice(storage.pageOffset(pull.blockIds[index]), bytes);
        ByteBuffer view = run.asByteBuffer().asReadOnlyBuffer();
        crc.reset();
        crc.update(view.duplicate());
        ctx.write(KvFrame.pagesHeader(ctx.alloc(), pull.requestId, layer, index, count, (int) crc.getValue(), bytes));
        ctx.write(Unpooled.wrappedBuffer(view));
        server.countPayloadBytes(bytes);
        if (!pull.progress().isFinished()) {
            server.countPagesSentWhileComputing(count);
        }
    }

    private void sendError(ChannelHandlerContext ctx, long requestId, KvTransferStatus status, String message) {
        ctx.writeAndFlush(KvFrame.error(ctx.alloc(), requestId, status, message));
    }

    private void protocolError(ChannelHandlerContext ctx, String what) {
        LOG.warn("KV data-plane protocol error from {}: {}; closing the connection", ctx.channel().remoteAddress(), what);
        ctx.close();
    }

    /**
     * Runs {@code task} on the connection's event loop (at once if already there); a failure in it
     * closes the connection like any other handler failure, rather than vanishing into the
     * provider's future.
     */
    private static void runOnLoop(ChannelHandlerContext ctx, Runnable task) {
        Runnable guarded = () -> {
            try {
                task.run();
            } catch (RuntimeException e) {
                ctx.fireExceptionCaught(e);
            }
        };
        if (ctx.executor().inEventLoop()) {
            guarded.run();
            return;
        }
        try {
            ctx.executor().execute(guarded);
        } catch (RejectedExecutionException e) {
            // The server is shutting down; its connections close and their pullers learn it.
            LOG.debug("KV page server shut down before a lease check answered", e);
        }
    }

    private record Rejection(KvTransferStatus status, String message) {
    }
}
