package io.tandem.kvcache.transfer;

import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.EventLoop;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.zip.CRC32C;
import org.agrona.collections.Long2ObjectHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The pooled data-plane connection of a {@link NettyKvTransport} to one {@link KvPageServer}, and
 * the handler of its channel. Everything here runs on the channel's event loop.
 *
 * <p>Inbound bytes are decoded as a stream, not as whole frames: headers are gathered in a small
 * buffer, but a {@code PAGES} payload is copied chunk by chunk from each socket read straight into
 * the destination pages (one copy, no cumulation), with the CRC32C updated on the way; the
 * checksum is compared when the frame's last byte has arrived. Payload bytes are returned as
 * credit (see {@link KvFrame}) in batches: at each read burst's end, or sooner when a quarter of
 * the window is owed.
 */
final class KvPeerConnection extends ChannelInboundHandlerAdapter {
    private static final Logger LOG = LoggerFactory.getLogger(KvPeerConnection.class);
    /** Longest header a server frame can have before its payload: an {@code ERROR} with a full message. */
    private static final int MAX_HEADER_LENGTH = KvFrame.ERROR_FIXED_LENGTH + KvFrame.MAX_ERROR_MESSAGE_BYTES;

    private final NettyKvTransport transport;
    private final InetSocketAddress address;
    private final long windowBytes;
    private final Long2ObjectHashMap<InboundPull> pulls = new Long2ObjectHashMap<>();
    /** Pulls and releases submitted before the connection was up, sent on connect. */
    private final List<InboundPull> unsentPulls = new ArrayList<>();
    private final List<long[]> unsentReleases = new ArrayList<>();
    private final List<long[]> unsentRenewals = new ArrayList<>();
    private final CRC32C crc = new CRC32C();
    private final EventLoop loop;
    /** Null until {@link #connect} ran. */
    private Channel channel;
    private ChannelHandlerContext ctx;
    private boolean active;
    /** Set once the connection failed or ended; read by the transport to replace this peer. */
    private volatile boolean closed;
    private Throwable failure;
    /** Why the connection ended, for pulls that arrive after. */
    private String closedBecause;

    /** Header bytes of the frame being decoded. */
    private ByteBuf header;
    /** Header length of the frame being decoded, 0 until its common header is in. */
    private int headerLength;
    /** Payload being received: bytes left (0 when decoding headers), the pull or null to drop it. */
    private long payloadRemaining;
    private long payloadLength;
    private InboundPull payloadPull;
    private int payloadLayer;
    private int payloadFirstIndex;
    private int payloadCount;
    private int payloadCrc;
    /** Payload bytes consumed and not yet returned as credit. */
    private long creditOwed;

    /** A peer whose channel will live on {@code loop}; pulls may be submitted before it connects. */
    KvPeerConnection(NettyKvTransport transport, InetSocketAddress address, long windowBytes, EventLoop loop) {
        this.transport = transport;
        this.address = address;
        this.windowBytes = windowBytes;
        this.loop = loop;
    }

    /** Connects (event loop); a failed connect fails every pull submitted so far. */
    void connect(Bootstrap bootstrap) {
        if (closed) {
            return;
        }
        ChannelFuture connect = bootstrap.connect(address);
        channel = connect.channel();
        connect.addListener(done -> {
            if (!done.isSuccess()) {
                failure = done.cause();
                failAll("cannot connect to the KV page server at " + address);
            }
        });
    }

    EventLoop loop() {
        return loop;
    }

    boolean isClosed() {
        return closed;
    }

    /** Starts a pull on this connection (event loop). */
    void submit(InboundPull pull) {
        if (pull.future.isDone()) {
            return;
        }
        if (closed) {
            pull.future.completeExceptionally(new KvTransferException(KvTransferStatus.CONNECTION_LOST,
                    pull.describe() + ": " + (closedBecause != null ? closedBecause : "connection closed"), failure));
            return;
        }
        long delay = pull.deadlineNanos - System.nanoTime();
        if (delay <= 0) {
            timeOut(pull);
            return;
        }
        pulls.put(pull.requestId, pull);
        pull.timeout = loop.schedule(() -> checkDeadline(pull), delay, TimeUnit.NANOSECONDS);
        if (active) {
            ctx.writeAndFlush(pullFrame(pull));
        } else {
            unsentPulls.add(pull);
        }
    }

    /** Cleans up after a pull completed, whoever completed it (event loop). */
    void completed(InboundPull pull) {
        if (pull.timeout != null) {
            pull.timeout.cancel(false);
        }
        if (pulls.remove(pull.requestId) != null && active) {
            // Completed here, not by DONE or ERROR (cancelled, timed out, corrupt): the server may
            // still be sending it.
            ctx.writeAndFlush(KvFrame.cancel(ctx.alloc(), pull.requestId));
        }
    }

    /** Sends a lease release, once connected (event loop). */
    void release(long epoch, long leaseId) {
        if (active) {
            ctx.writeAndFlush(KvFrame.release(ctx.alloc(), epoch, leaseId));
        } else if (!closed) {
            unsentReleases.add(new long[] {epoch, leaseId});
        } else {
            LOG.warn("cannot release KV lease {} (epoch {}) at {}: connection closed; it will expire",
                    leaseId, epoch, address);
        }
    }

    /** Sends a lease renewal, once connected (event loop); on a closed connection it is dropped (the pull will tell). */
    void renew(long epoch, long leaseId) {
        if (active) {
            ctx.writeAndFlush(KvFrame.renew(ctx.alloc(), epoch, leaseId));
        } else if (!closed) {
            unsentRenewals.add(new long[] {epoch, leaseId});
        }
    }

    /** Closes the connection; its pulls fail (any thread). */
    void close() {
        loop.execute(() -> {
            if (channel != null) {
                channel.close();
            } else {
                failAll("the KV transport was closed");
            }
        });
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
        this.ctx = ctx;
        this.header = ctx.alloc().buffer(MAX_HEADER_LENGTH, MAX_HEADER_LENGTH);
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext ctx) {
        header.release();
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
        active = true;
        ctx.write(KvFrame.credit(ctx.alloc(), windowBytes));
        for (InboundPull pull : unsentPulls) {
            if (pulls.containsKey(pull.requestId)) {
                ctx.write(pullFrame(pull));
            }
        }
        for (long[] lease : unsentReleases) {
            ctx.write(KvFrame.release(ctx.alloc(), lease[0], lease[1]));
        }
        for (long[] lease : unsentRenewals) {
            ctx.write(KvFrame.renew(ctx.alloc(), lease[0], lease[1]));
        }
        unsentPulls.clear();
        unsentReleases.clear();
        unsentRenewals.clear();
        ctx.flush();
        ctx.fireChannelActive();
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        active = false;
        failAll("connection to the KV page server at " + address + " lost");
        ctx.fireChannelInactive();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        if (failure == null) {
            failure = cause;
        }
        ctx.close();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        ByteBuf in = (ByteBuf) msg;
        try {
            while (in.isReadable() && !closed) {
                if (payloadRemaining > 0) {
                    readPayload(in);
                } else {
                    readHeader(in);
                }
            }
        } finally {
            in.release();
        }
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
        returnCredit();
        ctx.fireChannelReadComplete();
    }

    private void readHeader(ByteBuf in) {
        if (headerLength == 0) {
            take(in, KvFrame.HEADER_LENGTH);
            if (header.readableBytes() < KvFrame.HEADER_LENGTH) {
                return;
            }
            headerLength = headerLength();
            if (headerLength < 0) {
                return;
            }
        }
        take(in, headerLength);
        if (header.readableBytes() == headerLength) {
            onHeader();
            header.clear();
            headerLength = 0;
        }
    }

    private void take(ByteBuf in, int upTo) {
        header.writeBytes(in, Math.min(in.readableBytes(), upTo - header.readableBytes()));
    }

    /** Length of the current frame up to its payload, from its common header; -1 if it is broken. */
    private int headerLength() {
        String bad = KvFrame.checkHeader(header);
        if (bad != null) {
            return protocolError(bad);
        }
        long frameLength = header.getUnsignedInt(0) + KvFrame.LENGTH_FIELD_LENGTH;
        byte type = header.getByte(KvFrame.TYPE_OFFSET);
        return switch (type) {
            case KvFrame.TYPE_PAGES -> frameLength >= KvFrame.PAGES_HEADER_LENGTH ? KvFrame.PAGES_HEADER_LENGTH
                    : protocolError("PAGES frame of " + frameLength + " bytes");
            case KvFrame.TYPE_DONE -> frameLength == KvFrame.DONE_LENGTH ? KvFrame.DONE_LENGTH
                    : protocolError("DONE frame of " + frameLength + " bytes");
            case KvFrame.TYPE_ERROR -> frameLength >= KvFrame.ERROR_FIXED_LENGTH && frameLength <= MAX_HEADER_LENGTH
                    ? (int) frameLength : protocolError("ERROR frame of " + frameLength + " bytes");
            default -> protocolError("unexpected " + KvFrame.typeName(type) + " frame from a server");
        };
    }

    private void onHeader() {
        long requestId = header.getLong(KvFrame.REQUEST_ID_OFFSET);
        switch (header.getByte(KvFrame.TYPE_OFFSET)) {
            case KvFrame.TYPE_PAGES -> onPagesHeader(requestId);
            case KvFrame.TYPE_DONE -> {
                InboundPull pull = pulls.remove(requestId);
                if (pull == null) {
                    return;
                }
                if (pull.pagesReceived != pull.expectedPages()) {
                    pull.future.completeExceptionally(new KvTransferException(KvTransferStatus.PROTOCOL_ERROR,
                            pull.describe() + ": DONE after " + pull.pagesReceived + " of " + pull.expectedPages() + " pages"));
                } else {
                    pull.future.complete(null);
                }
            }
            case KvFrame.TYPE_ERROR -> {
                KvTransferStatus status = KvTransferStatus.fromWireCode(header.getInt(KvFrame.HEADER_LENGTH));
                String message = header.toString(KvFrame.ERROR_FIXED_LENGTH, headerLength - KvFrame.ERROR_FIXED_LENGTH,
                        StandardCharsets.UTF_8);
                InboundPull pull = pulls.remove(requestId);
                if (pull != null) {
                    pull.future.completeExceptionally(new KvTransferException(status, pull.describe() + ": " + message));
                } else if (requestId == KvFrame.NO_REQUEST) {
                    LOG.warn("KV page server at {} reports {}: {}", address, status, message);
                }
            }
            default -> throw new IllegalStateException("header of an unchecked frame type");
        }
    }

    private void onPagesHeader(long requestId) {
        payloadLayer = header.getInt(KvFrame.HEADER_LENGTH);
        payloadFirstIndex = header.getInt(KvFrame.HEADER_LENGTH + 4);
        payloadCount = header.getInt(KvFrame.HEADER_LENGTH + 8);
        payloadCrc = header.getInt(KvFrame.HEADER_LENGTH + 12);
        payloadLength = header.getUnsignedInt(0) + KvFrame.LENGTH_FIELD_LENGTH - KvFrame.PAGES_HEADER_LENGTH;
        payloadPull = pulls.get(requestId);
        InboundPull pull = payloadPull;
        if (pull != null && (payloadLayer < pull.layerFrom || payloadLayer >= pull.layerTo || payloadFirstIndex < 0
                || payloadCount < 1 || payloadFirstIndex + payloadCount > pull.dstBlockIds.length
                || payloadLength != payloadCount * pull.pageBytes())) {
            protocolError(pull.describe() + ": PAGES frame for layer " + payloadLayer + " pages [" + payloadFirstIndex
                    + ", +" + payloadCount + ") with " + payloadLength + " payload bytes does not fit the pull");
            return;
        }
        crc.reset();
        payloadRemaining = payloadLength;
        if (payloadRemaining == 0) {
            onPayloadEnd();
        }
    }

    /** Copies (or drops) the part of the current payload that is in {@code in}, page by page. */
    private void readPayload(ByteBuf in) {
        int end = in.readerIndex() + (int) Math.min(in.readableBytes(), payloadRemaining);
        while (in.readerIndex() < end) {
            int chunk = end - in.readerIndex();
            InboundPull pull = payloadPull;
            if (pull != null) {
                long position = payloadLength - payloadRemaining;
                long offsetInPage = position % pull.pageBytes();
                chunk = (int) Math.min(chunk, pull.pageBytes() - offsetInPage);
                copyChunk(pull, in, chunk, payloadFirstIndex + (int) (position / pull.pageBytes()), offsetInPage);
            }
            in.skipBytes(chunk);
            payloadRemaining -= chunk;
        }
        if (payloadRemaining == 0) {
            onPayloadEnd();
        }
    }

    private void copyChunk(InboundPull pull, ByteBuf in, int chunk, int page, long offsetInPage) {
        try {
            for (ByteBuffer part : in.nioBuffers(in.readerIndex(), chunk)) {
                int partBytes = part.remaining();
                if (!pull.write(payloadLayer, page, offsetInPage, part)) {
                    payloadPull = null;
                    return;
                }
                crc.update(part);
                offsetInPage += partBytes;
            }
        } catch (RuntimeException e) {
            payloadPull = null;
            pull.future.completeExceptionally(new KvTransferException(KvTransferStatus.INTERNAL,
                    pull.describe() + ": cannot write page " + page + " of layer " + payloadLayer
                            + " into the destination", e));
        }
    }

    private void onPayloadEnd() {
        creditOwed += payloadLength;
        transport.countPayloadBytes(payloadLength);
        InboundPull pull = payloadPull;
        payloadPull = null;
        if (pull != null) {
            int computed = (int) crc.getValue();
            if (computed != payloadCrc) {
                int last = payloadFirstIndex + payloadCount - 1;
                pull.future.completeExceptionally(new KvTransferException(KvTransferStatus.CRC_MISMATCH,
                        pull.describe() + ": CRC32C mismatch in layer " + payloadLayer + ", pages " + payloadFirstIndex
                                + ".." + last + " (source blocks " + pull.handle.blockIds()[payloadFirstIndex] + ".."
                                + pull.handle.blockIds()[last] + "): frame says 0x" + Integer.toHexString(payloadCrc)
                                + ", payload has 0x" + Integer.toHexString(computed)));
            } else {
                pull.pagesReceived += payloadCount;
                // an idle timeout: a pull overlapping a long prefill waits for pages, not for a hung peer
                pull.deadlineNanos = System.nanoTime() + transport.timeoutNanos();
            }
        }
        if (creditOwed >= windowBytes / 4) {
            returnCredit();
        }
    }

    private void returnCredit() {
        if (creditOwed > 0 && active) {
            ctx.writeAndFlush(KvFrame.credit(ctx.alloc(), creditOwed));
            creditOwed = 0;
        }
    }

    /** Times the pull out if its deadline passed, else checks again at the (pushed back) deadline. */
    private void checkDeadline(InboundPull pull) {
        if (pull.future.isDone()) {
            return;
        }
        long delay = pull.deadlineNanos - System.nanoTime();
        if (delay > 0) {
            pull.timeout = loop.schedule(() -> checkDeadline(pull), delay, TimeUnit.NANOSECONDS);
        } else {
            timeOut(pull);
        }
    }

    private void timeOut(InboundPull pull) {
        pull.future.completeExceptionally(new TimeoutException(pull.describe() + ": timed out after "
                + transport.timeoutMillis() + " ms " + (pull.pagesReceived == 0 ? "without a page" : "without a new page")
                + ", " + pull.pagesReceived + " of " + pull.expectedPages() + " pages received"));
    }

    private ByteBuf pullFrame(InboundPull pull) {
        return KvFrame.pull(ctx.alloc(), pull.requestId, pull.handle.epoch(), pull.handle.leaseId(), pull.pageBytes(),
                pull.layerFrom, pull.layerTo, pull.handle.blockIds());
    }

    /**
     * Fails every pull of this connection at once and retires it: with the protocol error that
     * closed it, else as {@link KvTransferStatus#CONNECTION_LOST} caused by {@link #failure}.
     */
    private void failAll(String what) {
        closed = true;
        if (closedBecause == null) {
            closedBecause = what;
        }
        KvTransferStatus status = failure instanceof KvTransferException known ? known.status()
                : KvTransferStatus.CONNECTION_LOST;
        List<InboundPull> failed = new ArrayList<>(pulls.values());
        pulls.clear();
        unsentPulls.clear();
        for (InboundPull pull : failed) {
            pull.future.completeExceptionally(new KvTransferException(status, pull.describe() + ": " + what, failure));
        }
        if (!unsentReleases.isEmpty()) {
            LOG.warn("{} KV lease releases to {} not sent: connection closed; the leases will expire",
                    unsentReleases.size(), address);
            unsentReleases.clear();
        }
        unsentRenewals.clear();
        transport.forget(address, this);
    }

    private int protocolError(String what) {
        LOG.warn("KV data-plane protocol error from {}: {}; closing the connection", address, what);
        if (failure == null) {
            failure = new KvTransferException(KvTransferStatus.PROTOCOL_ERROR, what);
        }
        closed = true;
        channel.close();
        return -1;
    }
}
