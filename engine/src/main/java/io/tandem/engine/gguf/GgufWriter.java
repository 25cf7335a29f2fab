package io.tandem.engine.gguf;

import io.tandem.engine.tensor.GgmlType;
import java.io.BufferedOutputStream;
import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Builds a GGUF version 3 file (layout in {@link GgufFile}) that llama.cpp and {@link GgufFile} read.
 *
 * <p>Metadata is written in insertion order, tensors in the order added. Following ggml's
 * {@code gguf_write_to_file}: tensor offsets start at 0 and each tensor's data is zero-padded to
 * the alignment, so every offset is a multiple of it; the header is zero-padded so the data
 * section starts at a multiple of it. The alignment is the value of {@code general.alignment} if
 * it was put (as any integer type; it must be a power of two), else 32.
 *
 * <p>Tensor data comes either from a {@link MemorySegment} or from a {@link TensorDataSource}
 * that streams it while the file is written, so a large model need not be held in memory.
 * Not thread-safe; use one writer per file.
 */
public final class GgufWriter {
    /** The GGUF version written. */
    public static final int VERSION = 3;
    private static final int COPY_CHUNK = 1 << 16;

    /** Streams one tensor's bytes; must write exactly {@link GgufTensorInfo#byteSize()} bytes. */
    @FunctionalInterface
    public interface TensorDataSource {
        /** Writes the tensor's raw bytes (ggml layout, little-endian) to {@code out}; must not close it. */
        void writeTo(OutputStream out) throws IOException;
    }

    private record PendingTensor(GgufTensorInfo info, TensorDataSource source) {}

    private final Map<String, GgufValue> metadata = new LinkedHashMap<>();
    private final List<PendingTensor> tensors = new ArrayList<>();
    private final Set<String> tensorNames = new HashSet<>();

    /**
     * Adds a metadata entry.
     *
     * @throws IllegalArgumentException if the key was already put (GGUF keys are unique)
     */
    public GgufWriter put(String key, GgufValue value) {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(value, "value");
        if (metadata.putIfAbsent(key, value) != null) {
            throw new IllegalArgumentException("metadata key '" + key + "' was already put");
        }
        return this;
    }

    /** Adds every entry, in map order (e.g. {@link GgufFile#metadataValues()} to copy a tokenizer). */
    public GgufWriter putAll(Map<String, GgufValue> values) {
        values.forEach(this::put);
        return this;
    }

    public GgufWriter putString(String key, String value) {
        return put(key, GgufValue.string(value));
    }

    /** A uint32, the type llama.cpp expects for hyper-parameters and token ids. */
    public GgufWriter putUint32(String key, long value) {
        return put(key, GgufValue.uint32(value));
    }

    public GgufWriter putInt32(String key, int value) {
        return put(key, GgufValue.int32(value));
    }

    public GgufWriter putFloat32(String key, float value) {
        return put(key, GgufValue.float32(value));
    }

    public GgufWriter putBool(String key, boolean value) {
        return put(key, GgufValue.bool(value));
    }

    public GgufWriter putStringArray(String key, String... values) {
        return put(key, GgufValue.array(GgufValueType.STRING, values.clone()));
    }

    public GgufWriter putFloat32Array(String key, float... values) {
        return put(key, GgufValue.array(GgufValueType.FLOAT32, values.clone()));
    }

    public GgufWriter putInt32Array(String key, int... values) {
        return put(key, GgufValue.array(GgufValueType.INT32, values.clone()));
    }

    /**
     * Adds a tensor whose bytes are {@code data} (read when {@link #write} runs, so it must stay
     * valid until then).
     *
     * @param dims ne0 first, as in {@link GgufTensorInfo}
     * @throws IllegalArgumentException for a duplicate name, bad dims, or a data size that is not
     *                                  {@code type.byteSize(product of dims)}
     */
    public GgufWriter addTensor(String name, GgmlType type, long[] dims, MemorySegment data) {
        GgufTensorInfo info = new GgufTensorInfo(name, type, dims, 0);
        if (data.byteSize() != info.byteSize()) {
            throw new IllegalArgumentException("tensor '" + name + "' " + type + " " + Arrays.toString(dims)
                    + " needs " + info.byteSize() + " bytes of data, got " + data.byteSize());
        }
        return addTensor(info, out -> copy(data, out));
    }

    /**
     * Adds a tensor whose bytes {@code source} streams during {@link #write}.
     *
     * @throws IllegalArgumentException for a duplicate name or bad dims
     */
    public GgufWriter addTensor(String name, GgmlType type, long[] dims, TensorDataSource source) {
        return addTensor(new GgufTensorInfo(name, type, dims, 0), Objects.requireNonNull(source, "source"));
    }

    private GgufWriter addTensor(GgufTensorInfo info, TensorDataSource source) {
        if (!tensorNames.add(info.name())) {
            throw new IllegalArgumentException("tensor '" + info.name() + "' was already added");
        }
        tensors.add(new PendingTensor(info, source));
        return this;
    }

    /** The data alignment the file will use: {@code general.alignment} if put, else 32. */
    public int alignment() {
        GgufValue v = metadata.get(GgufFile.ALIGNMENT_KEY);
        if (v == null) {
            return GgufFile.DEFAULT_ALIGNMENT;
        }
        long a = v.type().isInteger() ? ((Number) v.value()).longValue() : -1;
        if (a <= 0 || a > (1 << 30) || Long.bitCount(a) != 1) {
            throw new IllegalStateException("'" + GgufFile.ALIGNMENT_KEY + "' must be a power-of-two integer, got " + v);
        }
        return (int) a;
    }

    /**
     * Writes the file, replacing {@code path} if it exists.
     *
     * @throws IllegalStateException if a {@link TensorDataSource} writes the wrong number of bytes
     * @throws IOException           on write errors
     */
    public void write(Path path) throws IOException {
        int alignment = alignment();
        List<GgufTensorInfo> infos = new ArrayList<>(tensors.size());
        long offset = 0;
        for (PendingTensor t : tensors) {
            GgufTensorInfo i = t.info();
            infos.add(new GgufTensorInfo(i.name(), i.type(), i.dims(), offset));
            offset = alignUp(offset + i.byteSize(), alignment);
        }
        try (LittleEndianOutput out = new LittleEndianOutput(new BufferedOutputStream(Files.newOutputStream(path), 1 << 20))) {
            out.write(GgufFile.MAGIC.getBytes(StandardCharsets.US_ASCII));
            out.u32(VERSION);
            out.u64(tensors.size());
            out.u64(metadata.size());
            for (Map.Entry<String, GgufValue> e : metadata.entrySet()) {
                out.string(e.getKey());
                out.u32(e.getValue().type().id());
                writeValue(out, e.getValue());
            }
            for (GgufTensorInfo i : infos) {
                out.string(i.name());
                out.u32(i.nDims());
                for (long d : i.dims()) {
                    out.u64(d);
                }
                out.u32(i.type().id());
                out.u64(i.offset());
            }
            out.padTo(alignment);
            long dataStart = out.count();
            for (int k = 0; k < infos.size(); k++) {
                GgufTensorInfo i = infos.get(k);
                long before = out.count();
                tensors.get(k).source().writeTo(new NonClosingOutput(out));
                long written = out.count() - before;
                if (written != i.byteSize()) {
                    throw new IllegalStateException("tensor '" + i.name() + "' source wrote " + written
                            + " bytes, expected " + i.byteSize());
                }
                out.padTo(alignment);
                assert out.count() - dataStart == (k + 1 < infos.size() ? infos.get(k + 1).offset() : offset);
            }
        }
    }

    private static void writeValue(LittleEndianOutput out, GgufValue v) throws IOException {
        Object x = v.value();
        switch (v.type()) {
            case UINT8, INT8, BOOL -> out.write(x instanceof Boolean b ? (b ? 1 : 0) : ((Integer) x));
            case UINT16, INT16 -> out.u16((Integer) x);
            case UINT32 -> out.u32((Long) x);
            case INT32 -> out.u32((Integer) x);
            case UINT64, INT64 -> out.u64((Long) x);
            case FLOAT32 -> out.u32(Float.floatToRawIntBits((Float) x));
            case FLOAT64 -> out.u64(Double.doubleToRawLongBits((Double) x));
            case STRING -> out.string((String) x);
            case ARRAY -> writeArray(out, v);
        }
    }

    private static void writeArray(LittleEndianOutput out, GgufValue v) throws IOException {
        out.u32(v.elementType().id());
        out.u64(v.arrayLength());
        switch (v.value()) {
            case byte[] a -> out.write(a);
            case short[] a -> { for (short s : a) { out.u16(s); } }
            case int[] a -> { for (int i : a) { out.u32(i); } }
            case long[] a -> { for (long l : a) { out.u64(l); } }
            case float[] a -> { for (float f : a) { out.u32(Float.floatToRawIntBits(f)); } }
            case double[] a -> { for (double d : a) { out.u64(Double.doubleToRawLongBits(d)); } }
            case boolean[] a -> { for (boolean b : a) { out.write(b ? 1 : 0); } }
            case String[] a -> { for (String s : a) { out.string(s); } }
            case GgufValue[] a -> { for (GgufValue inner : a) { writeArray(out, inner); } }
            default -> throw new IllegalStateException("unexpected array class " + v.value().getClass());
        }
    }

    private static void copy(MemorySegment data, OutputStream out) throws IOException {
        byte[] chunk = new byte[(int) Math.min(COPY_CHUNK, Math.max(1, data.byteSize()))];
        for (long off = 0; off < data.byteSize(); off += chunk.length) {
            int n = (int) Math.min(chunk.length, data.byteSize() - off);
            MemorySegment.copy(data, ValueLayout.JAVA_BYTE, off, chunk, 0, n);
            out.write(chunk, 0, n);
        }
    }

    static long alignUp(long x, long alignment) {
        return (x + alignment - 1) / alignment * alignment;
    }

    /** Counts bytes and writes little-endian primitives and {@code gguf_string}s. */
    private static final class LittleEndianOutput extends FilterOutputStream {
        private final byte[] scratch = new byte[8];
        private long count;

        LittleEndianOutput(OutputStream out) {
            super(out);
        }

        long count() {
            return count;
        }

        @Override
        public void write(int b) throws IOException {
            out.write(b);
            count++;
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            out.write(b, off, len);
            count += len;
        }

        void u16(int v) throws IOException {
            scratch[0] = (byte) v;
            scratch[1] = (byte) (v >>> 8);
            write(scratch, 0, 2);
        }

        void u32(long v) throws IOException {
            for (int i = 0; i < 4; i++) {
                scratch[i] = (byte) (v >>> (8 * i));
            }
            write(scratch, 0, 4);
        }

        void u64(long v) throws IOException {
            for (int i = 0; i < 8; i++) {
                scratch[i] = (byte) (v >>> (8 * i));
            }
            write(scratch, 0, 8);
        }

        void string(String s) throws IOException {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            u64(b.length);
            write(b, 0, b.length);
        }

        void padTo(int alignment) throws IOException {
            while (count % alignment != 0) {
                write(0);
            }
        }
    }

    /** What a {@link TensorDataSource} writes to: counts through, and ignores {@code close()}. */
    private static final class NonClosingOutput extends FilterOutputStream {
        NonClosingOutput(OutputStream out) {
            super(out);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            out.write(b, off, len);
        }

        @Override
        public void close() {
            // The writer owns the file stream; a source closing it would truncate the file.
        }
    }
}
