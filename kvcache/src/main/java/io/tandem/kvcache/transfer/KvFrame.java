package io.tandem.kvcache.transfer;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import java.nio.charset.StandardCharsets;

/**
 * The KV data-plane wire format (DESIGN.md §2): length-prefixed binary frames over TCP, all
 * integers big-endian, unsigned in meaning.
 *
 * <pre>
 * Every frame:
 *   0          4        6     7     8                   16
 *  +----------+--------+-----+-----+-------------------+------------------------+
 *  | length   | magic  | ver | type| requestId         | body (by type)         |
 *  | u32      | u16 KV | u8 1| u8  | u64               |                        |
 *  +----------+--------+-----+-----+-------------------+------------------------+
 *   length = bytes after the length field = 12 + body.  requestId 0 = connection-level.
 *
 * Bodies (offsets from 16):
 *  PULL    c→s | epoch u64 | leaseId u64 | pageBytes u32 | layerFrom u32 | layerTo u32 |
 *              | n u32 | blockIds u32 × n |                  layers [layerFrom, layerTo)
 *  CREDIT  c→s | bytes u64 |                                  requestId 0
 *  CANCEL  c→s | (empty) |
 *  RELEASE c→s | epoch u64 | leaseId u64 |                    requestId 0
 *  RENEW   c→s | epoch u64 | leaseId u64 |                    requestId 0
 *  PAGES   s→c | layer u32 | firstIndex u32 | count u32 | crc32c u32 |
 *              | payload: count × pageBytes raw page bytes |
 *  DONE    s→c | (empty) |
 *  ERROR   s→c | code u32 | message UTF-8 (rest of frame, ≤ 1 KiB) |
 * </pre>
 *
 * <p><b>Pull.</b> {@code PULL} asks for the pages {@code (layer, blockIds[i])} for every layer of
 * the range and every {@code i}; {@code pageBytes} is the puller's page size, checked against the
 * server's. The server answers with {@code PAGES} frames each carrying one <em>page run</em>:
 * {@code count} pages {@code blockIds[firstIndex .. firstIndex + count)} of one layer whose block
 * ids are consecutive, so the payload is one contiguous region of the server's memory. Each page
 * is sent once, when final: for a finished prefill in layer order and block order within a layer;
 * for a lease whose prefill still computes (an early handle), whichever pages are final first,
 * lowest layer first, so clients must not assume an order. {@code crc32c} (Castagnoli, {@link
 * java.util.zip.CRC32C}) covers the payload. Then {@code DONE}, or {@code ERROR} at any point
 * (codes: {@link KvTransferStatus#wireCode()}). Pulls on one connection are independent and
 * interleave frame by frame; {@code CANCEL} stops one (frames already on the wire still arrive).
 *
 * <p><b>Flow control (credit).</b> The connection has a byte window {@code W} chosen by the
 * client: on connect the client sends {@code CREDIT(W)}; the server sends a {@code PAGES} frame
 * only if its payload fits in the credit it holds and subtracts it; the client returns a frame's
 * payload bytes in a {@code CREDIT} once it has copied (or dropped) them. So payload bytes sent but
 * not yet consumed never exceed {@code W} per connection, however many pulls share it; the server
 * shortens runs to fit the credit, and {@code W} must be at least one page. Control frames are
 * not counted.
 *
 * <p><b>Release and renewal.</b> {@code RELEASE} ends a lease (fire and forget; the provider's
 * release is idempotent). {@code RENEW} pushes a held lease's deadline by the server's lease
 * timeout, so that a puller whose request waits (queued, or a long pull) keeps the pages; fire
 * and forget too: a lease the server no longer holds stays gone, and the next pull of it fails with
 * {@link KvTransferStatus#UNKNOWN_LEASE} or {@link KvTransferStatus#STALE_EPOCH}.
 */
public final class KvFrame {
    /** Bytes of the length field. */
    public static final int LENGTH_FIELD_LENGTH = 4;
    /** {@code 'K' 'V'}. */
    public static final short MAGIC = 0x4B56;
    public static final byte VERSION = 1;

    public static final byte TYPE_PULL = 1;
    public static final byte TYPE_CREDIT = 2;
    public static final byte TYPE_CANCEL = 3;
    public static final byte TYPE_RELEASE = 4;
    public static final byte TYPE_RENEW = 5;
    public static final byte TYPE_PAGES = 16;
    public static final byte TYPE_DONE = 17;
    public static final byte TYPE_ERROR = 18;

    /** Offsets inside a frame, counted from the length field. */
    public static final int MAGIC_OFFSET = 4;
    public static final int VERSION_OFFSET = 6;
    public static final int TYPE_OFFSET = 7;
    public static final int REQUEST_ID_OFFSET = 8;
    /** Length of the common header: length, magic, version, type, requestId. */
    public static final int HEADER_LENGTH = 16;

    /** {@code PULL} up to the block ids. */
    public static final int PULL_FIXED_LENGTH = HEADER_LENGTH + 8 + 8 + 4 + 4 + 4 + 4;
    public static final int CREDIT_LENGTH = HEADER_LENGTH + 8;
    public static final int CANCEL_LENGTH = HEADER_LENGTH;
    public static final int RELEASE_LENGTH = HEADER_LENGTH + 8 + 8;
    public static final int RENEW_LENGTH = HEADER_LENGTH + 8 + 8;
    /** {@code PAGES} up to the payload. */
    public static final int PAGES_HEADER_LENGTH = HEADER_LENGTH + 4 + 4 + 4 + 4;
    public static final int DONE_LENGTH = HEADER_LENGTH;
    /** {@code ERROR} up to the message. */
    public static final int ERROR_FIXED_LENGTH = HEADER_LENGTH + 4;

    /** Most block ids in one {@code PULL} (a million tokens at block size 16). */
    public static final int MAX_PULL_BLOCKS = 1 << 16;
    /** Most message bytes in an {@code ERROR}; longer messages are cut. */
    public static final int MAX_ERROR_MESSAGE_BYTES = 1024;
    /** Longest frame other than {@code PAGES}: a {@code PULL} of {@link #MAX_PULL_BLOCKS}. */
    public static final int MAX_CONTROL_FRAME_LENGTH = PULL_FIXED_LENGTH + 4 * MAX_PULL_BLOCKS;
    /** Connection-level frames carry this request id; pulls never use it. */
    public static final long NO_REQUEST = 0;

    private KvFrame() {
    }

    /** A {@code PULL}; checks nothing (the caller validated the request). */
    public static ByteBuf pull(ByteBufAllocator alloc, long requestId, long epoch, long leaseId, long pageBytes,
            int layerFrom, int layerTo, int[] blockIds) {
        int length = PULL_FIXED_LENGTH + 4 * blockIds.length;
        ByteBuf frame = header(alloc, length, TYPE_PULL, requestId)
                .writeLong(epoch)
                .writeLong(leaseId)
                .writeInt(Math.toIntExact(pageBytes))
                .writeInt(layerFrom)
                .writeInt(layerTo)
                .writeInt(blockIds.length);
        for (int blockId : blockIds) {
            frame.writeInt(blockId);
        }
        return frame;
    }

    public static ByteBuf credit(ByteBufAllocator alloc, long bytes) {
        return header(alloc, CREDIT_LENGTH, TYPE_CREDIT, NO_REQUEST).writeLong(bytes);
    }

    public static ByteBuf cancel(ByteBufAllocator alloc, long requestId) {
        return header(alloc, CANCEL_LENGTH, TYPE_CANCEL, requestId);
    }

    public static ByteBuf release(ByteBufAllocator alloc, long epoch, long leaseId) {
        return header(alloc, RELEASE_LENGTH, TYPE_RELEASE, NO_REQUEST).writeLong(epoch).writeLong(leaseId);
    }

    public static ByteBuf renew(ByteBufAllocator alloc, long epoch, long leaseId) {
        return header(alloc, RENEW_LENGTH, TYPE_RENEW, NO_REQUEST).writeLong(epoch).writeLong(leaseId);
    }

    /** The header of a {@code PAGES} frame; the {@code payloadBytes} of pages follow it. */
    public static ByteBuf pagesHeader(ByteBufAllocator alloc, long requestId, int layer, int firstIndex, int count,
            int crc32c, long payloadBytes) {
        ByteBuf frame = alloc.directBuffer(PAGES_HEADER_LENGTH);
        return frame.writeInt(Math.toIntExact(PAGES_HEADER_LENGTH - LENGTH_FIELD_LENGTH + payloadBytes))
                .writeShort(MAGIC)
                .writeByte(VERSION)
                .writeByte(TYPE_PAGES)
                .writeLong(requestId)
                .writeInt(layer)
                .writeInt(firstIndex)
                .writeInt(count)
                .writeInt(crc32c);
    }

    public static ByteBuf done(ByteBufAllocator alloc, long requestId) {
        return header(alloc, DONE_LENGTH, TYPE_DONE, requestId);
    }

    /** An {@code ERROR}; a message over {@link #MAX_ERROR_MESSAGE_BYTES} UTF-8 bytes is cut. */
    public static ByteBuf error(ByteBufAllocator alloc, long requestId, KvTransferStatus status, String message) {
        byte[] utf8 = message.getBytes(StandardCharsets.UTF_8);
        int messageBytes = Math.min(utf8.length, MAX_ERROR_MESSAGE_BYTES);
        return header(alloc, ERROR_FIXED_LENGTH + messageBytes, TYPE_ERROR, requestId)
                .writeInt(status.wireCode())
                .writeBytes(utf8, 0, messageBytes);
    }

    /** Name of a frame type, for error messages. */
    public static String typeName(int type) {
        return switch (type) {
            case TYPE_PULL -> "PULL";
            case TYPE_CREDIT -> "CREDIT";
            case TYPE_CANCEL -> "CANCEL";
            case TYPE_RELEASE -> "RELEASE";
            case TYPE_RENEW -> "RENEW";
            case TYPE_PAGES -> "PAGES";
            case TYPE_DONE -> "DONE";
            case TYPE_ERROR -> "ERROR";
            default -> "type " + type;
        };
    }

    /**
     * Checks magic and version of the header at the reader index of {@code frame}.
     *
     * @return null if they are right, else what is wrong
     */
    static String checkHeader(ByteBuf frame) {
        int at = frame.readerIndex();
        short magic = frame.getShort(at + MAGIC_OFFSET);
        if (magic != MAGIC) {
            return "bad magic 0x" + Integer.toHexString(magic & 0xFFFF) + " (expected 0x" + Integer.toHexString(MAGIC) + ")";
        }
        byte version = frame.getByte(at + VERSION_OFFSET);
        if (version != VERSION) {
            return "unsupported version " + version + " (expected " + VERSION + ")";
        }
        return null;
    }

    private static ByteBuf header(ByteBufAllocator alloc, int frameLength, byte type, long requestId) {
        return alloc.buffer(frameLength)
                .writeInt(frameLength - LENGTH_FIELD_LENGTH)
                .writeShort(MAGIC)
                .writeByte(VERSION)
                .writeByte(type)
                .writeLong(requestId);
    }
}
