package io.tandem.engine.gguf;

import static io.tandem.engine.gguf.GgufFile.ALIGNMENT_KEY;
import static io.tandem.engine.gguf.GgufFile.DEFAULT_ALIGNMENT;

import io.tandem.engine.tensor.GgmlType;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A GGUF file's parsed header: everything before the tensor data, validated (see {@link GgufFile}
 * for the layout). Tensor offsets are checked against the alignment and the file size.
 */
record GgufHeader(int version, int alignment, long dataOffset, Map<String, GgufValue> values,
                  List<GgufTensorInfo> tensors) {

    static GgufHeader parse(GgufReader r) throws GgufFormatException {
        r.require(4, "magic 'GGUF'");
        int b0 = r.u8("magic");
        int b1 = r.u8("magic");
        int b2 = r.u8("magic");
        int b3 = r.u8("magic");
        if (b0 != 'G' || b1 != 'G' || b2 != 'U' || b3 != 'F') {
            throw new GgufFormatException(0, String.format(
                    "bad magic: expected 'GGUF' (47 47 55 46), got %02x %02x %02x %02x", b0, b1, b2, b3));
        }
        long version = r.u32("version");
        if (version != 2 && version != 3) {
            String hint = (version & 0xFFFF) == 0 && version != 0 ? " (the file looks big-endian, which is not supported)" : "";
            throw new GgufFormatException(4, "unsupported GGUF version " + version + hint + "; expected 2 or 3");
        }
        long tensorCount = r.u64NonNegative("tensor count");
        long kvCount = r.u64NonNegative("metadata kv count");
        // Each kv takes at least 8 (key length) + 4 (type) bytes; each tensor info at least 8 + 4 + 4 + 8.
        if (kvCount > r.size() / 12 || tensorCount > r.size() / 24) {
            throw new GgufFormatException(8, "tensor count " + tensorCount + " / kv count " + kvCount
                    + " cannot fit in a file of " + r.size() + " bytes");
        }
        Map<String, GgufValue> values = new LinkedHashMap<>();
        long alignmentAt = -1;
        for (long i = 0; i < kvCount; i++) {
            long at = r.position();
            String key = r.string("key of metadata kv #" + i);
            GgufValueType type = r.valueType("value type of key '" + key + "'");
            GgufValue value = r.value(type, "value of key '" + key + "'");
            if (values.putIfAbsent(key, value) != null) {
                throw new GgufFormatException(at, "duplicate metadata key '" + key + "'");
            }
            if (key.equals(ALIGNMENT_KEY)) {
                alignmentAt = at;
            }
        }
        int alignment = alignment(values.get(ALIGNMENT_KEY), alignmentAt);
        List<GgufTensorInfo> tensors = new ArrayList<>();
        List<Long> infoOffsets = new ArrayList<>();
        Set<String> names = new HashSet<>();
        for (long i = 0; i < tensorCount; i++) {
            long at = r.position();
            GgufTensorInfo t = tensorInfo(r, i, at);
            if (!names.add(t.name())) {
                throw new GgufFormatException(at, "duplicate tensor name '" + t.name() + "'");
            }
            tensors.add(t);
            infoOffsets.add(at);
        }
        long dataOffset = r.alignedPosition(alignment);
        long dataBytes = Math.max(0, r.size() - dataOffset);
        for (int i = 0; i < tensors.size(); i++) {
            GgufTensorInfo t = tensors.get(i);
            if (t.offset() % alignment != 0) {
                throw new GgufFormatException(infoOffsets.get(i), "tensor '" + t.name() + "' has data offset "
                        + t.offset() + ", expected a multiple of the alignment " + alignment);
            }
            if (t.offset() > dataBytes || t.byteSize() > dataBytes - t.offset()) {
                throw new GgufFormatException(infoOffsets.get(i), "tensor '" + t.name() + "' data [" + t.offset()
                        + ", " + (t.offset() + t.byteSize()) + ") lies outside the data section of " + dataBytes
                        + " bytes (data starts at byte " + dataOffset + ", file size " + r.size() + ")");
            }
        }
        return new GgufHeader((int) version, alignment, dataOffset, values, tensors);
    }

    private static int alignment(GgufValue v, long at) throws GgufFormatException {
        if (v == null) {
            return DEFAULT_ALIGNMENT;
        }
        long a = v.type().isInteger() ? ((Number) v.value()).longValue() : -1;
        if (a <= 0 || a > (1 << 30) || Long.bitCount(a) != 1) {
            throw new GgufFormatException(at, "'" + ALIGNMENT_KEY + "' must be a power-of-two integer, got " + v);
        }
        return (int) a;
    }

    private static GgufTensorInfo tensorInfo(GgufReader r, long index, long at) throws GgufFormatException {
        String name = r.string("name of tensor #" + index);
        long nDimsAt = r.position();
        long nDims = r.u32("n_dims of tensor '" + name + "'");
        if (nDims > GgufTensorInfo.MAX_DIMS) {
            throw new GgufFormatException(nDimsAt, "tensor '" + name + "' has " + nDims + " dims, expected at most "
                    + GgufTensorInfo.MAX_DIMS);
        }
        long[] dims = new long[(int) nDims];
        for (int d = 0; d < dims.length; d++) {
            dims[d] = r.u64NonNegative("ne[" + d + "] of tensor '" + name + "'");
        }
        long typeAt = r.position();
        int typeId = r.i32("ggml type of tensor '" + name + "'");
        GgmlType type;
        try {
            type = GgmlType.fromId(typeId);
        } catch (IllegalArgumentException e) {
            throw new GgufFormatException(typeAt, "tensor '" + name + "': " + e.getMessage());
        }
        long offset = r.u64NonNegative("data offset of tensor '" + name + "'");
        try {
            return new GgufTensorInfo(name, type, dims, offset);
        } catch (IllegalArgumentException e) {
            throw new GgufFormatException(at, e.getMessage());
        }
    }
}
