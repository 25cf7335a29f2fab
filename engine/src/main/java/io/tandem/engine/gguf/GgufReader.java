package io.tandem.engine.gguf;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * A bounds-checked little-endian cursor over a GGUF file's bytes. Every read checks that the bytes
 * exist and throws {@link GgufFormatException} naming the offset and what was being read, so a
 * truncated or lying file never reads out of bounds or allocates absurd arrays.
 */
final class GgufReader {
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Nesting limit for arrays of arrays, so a hostile file cannot overflow the stack. */
    private static final int MAX_ARRAY_DEPTH = 8;

    private final MemorySegment bytes;
    private final long size;
    private long pos;

    GgufReader(MemorySegment bytes) {
        this.bytes = bytes;
        this.size = bytes.byteSize();
    }

    long position() {
        return pos;
    }

    long size() {
        return size;
    }

    /** Checks that {@code n} more bytes exist for {@code what}. */
    void require(long n, String what) throws GgufFormatException {
        if (n < 0 || n > size - pos) {
            throw new GgufFormatException(pos, "file truncated: expected " + (n < 0 ? "a valid length" : n + " bytes")
                    + " for " + what + ", but the file has " + (size - pos) + " bytes left (file size " + size + ")");
        }
    }

    int u8(String what) throws GgufFormatException {
        require(1, what);
        return Byte.toUnsignedInt(bytes.get(ValueLayout.JAVA_BYTE, pos++));
    }

    int u16(String what) throws GgufFormatException {
        require(2, what);
        int v = Short.toUnsignedInt(bytes.get(U16, pos));
        pos += 2;
        return v;
    }

    /** A uint32 as its raw int bits. */
    int i32(String what) throws GgufFormatException {
        require(4, what);
        int v = bytes.get(U32, pos);
        pos += 4;
        return v;
    }

    long u32(String what) throws GgufFormatException {
        return Integer.toUnsignedLong(i32(what));
    }

    long i64(String what) throws GgufFormatException {
        require(8, what);
        long v = bytes.get(U64, pos);
        pos += 8;
        return v;
    }

    /** A uint64 that must fit a non-negative long (counts, lengths, offsets, dims). */
    long u64NonNegative(String what) throws GgufFormatException {
        long at = pos;
        long v = i64(what);
        if (v < 0) {
            throw new GgufFormatException(at, "expected " + what + " < 2^63, got " + Long.toUnsignedString(v));
        }
        return v;
    }

    /** A {@code gguf_string}: uint64 byte length, then UTF-8 bytes (malformed bytes become U+FFFD). */
    String string(String what) throws GgufFormatException {
        long len = u64NonNegative("length of " + what);
        require(len, what);
        if (len > Integer.MAX_VALUE - 8) {
            throw new GgufFormatException(pos, what + " is " + len + " bytes long, more than a Java string holds");
        }
        byte[] b = new byte[(int) len];
        MemorySegment.copy(bytes, ValueLayout.JAVA_BYTE, pos, b, 0, b.length);
        pos += len;
        return new String(b, StandardCharsets.UTF_8);
    }

    /** A value type id followed by nothing: the caller reads the value with {@link #value}. */
    GgufValueType valueType(String what) throws GgufFormatException {
        long at = pos;
        long id = u32(what);
        GgufValueType t = GgufValueType.fromIdOrNull(id);
        if (t == null) {
            throw new GgufFormatException(at, "unknown GGUF value type id " + id + " for " + what
                    + " (expected 0..12: uint8, int8, uint16, int16, uint32, int32, float32, bool, string, array, uint64, int64, float64)");
        }
        return t;
    }

    /** A value of the given type (after its type id). */
    GgufValue value(GgufValueType type, String what) throws GgufFormatException {
        return value(type, what, 0);
    }

    private GgufValue value(GgufValueType type, String what, int depth) throws GgufFormatException {
        return switch (type) {
            case UINT8 -> GgufValue.uint8(u8(what));
            case INT8 -> GgufValue.int8((byte) u8(what));
            case UINT16 -> GgufValue.uint16(u16(what));
            case INT16 -> GgufValue.int16((short) u16(what));
            case UINT32 -> GgufValue.uint32(u32(what));
            case INT32 -> GgufValue.int32(i32(what));
            case UINT64 -> GgufValue.uint64(i64(what));
            case INT64 -> GgufValue.int64(i64(what));
            case FLOAT32 -> GgufValue.float32(Float.intBitsToFloat(i32(what)));
            case FLOAT64 -> GgufValue.float64(Double.longBitsToDouble(i64(what)));
            case BOOL -> GgufValue.bool(bool(what));
            case STRING -> GgufValue.string(string(what));
            case ARRAY -> array(what, depth);
        };
    }

    private boolean bool(String what) throws GgufFormatException {
        long at = pos;
        int b = u8(what);
        if (b > 1) {
            throw new GgufFormatException(at, "expected a bool (0 or 1) for " + what + ", got " + b);
        }
        return b == 1;
    }

    private GgufValue array(String what, int depth) throws GgufFormatException {
        long at = pos;
        if (depth >= MAX_ARRAY_DEPTH) {
            throw new GgufFormatException(at, what + " nests arrays deeper than " + MAX_ARRAY_DEPTH);
        }
        GgufValueType et = valueType("element type of " + what);
        long count = u64NonNegative("element count of " + what);
        // Every element takes at least its fixed size (strings and arrays at least their 8-byte length);
        // the count check comes first, so the product cannot overflow.
        long perElement = et.fixedSize() == 0 ? 8 : et.fixedSize();
        if (count > Integer.MAX_VALUE - 8 || count * perElement > size - pos) {
            throw new GgufFormatException(at, "file truncated: " + what + " claims " + count + " elements of " + et
                    + ", which do not fit in the " + (size - pos) + " bytes left (file size " + size + ")");
        }
        int n = (int) count;
        String elem = "element of " + what;
        return switch (et) {
            case UINT8, INT8 -> GgufValue.array(et, primitive(n, ValueLayout.JAVA_BYTE, new byte[n]));
            case UINT16, INT16 -> GgufValue.array(et, primitive(n, U16, new short[n]));
            case UINT32, INT32 -> GgufValue.array(et, primitive(n, U32, new int[n]));
            case UINT64, INT64 -> GgufValue.array(et, primitive(n, U64, new long[n]));
            case FLOAT32 -> GgufValue.array(et, primitive(n, F32, new float[n]));
            case FLOAT64 -> GgufValue.array(et, primitive(n, F64, new double[n]));
            case BOOL -> {
                boolean[] a = new boolean[n];
                for (int i = 0; i < n; i++) {
                    a[i] = bool(elem);
                }
                yield GgufValue.array(et, a);
            }
            case STRING -> {
                String[] a = new String[n];
                for (int i = 0; i < n; i++) {
                    a[i] = string(elem);
                }
                yield GgufValue.array(et, a);
            }
            case ARRAY -> {
                GgufValue[] a = new GgufValue[n];
                for (int i = 0; i < n; i++) {
                    a[i] = array(elem, depth + 1);
                }
                yield GgufValue.array(et, a);
            }
        };
    }

    /** Bulk-copies {@code n} little-endian elements into {@code dst} (already bounds-checked). */
    private <A> A primitive(int n, ValueLayout layout, A dst) {
        long bytesLen = n * layout.byteSize();
        MemorySegment.copy(bytes, layout, pos, dst, 0, n);
        pos += bytesLen;
        return dst;
    }

    /** The cursor position rounded up to a multiple of {@code alignment}. */
    long alignedPosition(long alignment) {
        return (pos + alignment - 1) / alignment * alignment;
    }
}
