package io.tandem.engine.gguf;

import io.tandem.engine.tensor.GgmlType;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A GGUF v2/v3 model file, memory-mapped read-only with {@code java.lang.foreign}.
 *
 * <p>Layout (ggml {@code docs/gguf.md}, all little-endian):
 * <pre>
 *   "GGUF" | version u32 | tensor_count u64 | kv_count u64
 *   kv_count  x ( key gguf_string | value_type u32 | value )
 *   tensor_count x ( name gguf_string | n_dims u32 | ne[n_dims] u64 | ggml_type u32 | offset u64 )
 *   zero padding to general.alignment (default 32)
 *   tensor data: each tensor at data_start + offset, offsets multiples of the alignment
 * </pre>
 * where {@code gguf_string} = byte length u64 + UTF-8 bytes. Version 1 (32-bit counts) and
 * big-endian files are refused.
 *
 * <p>The mapping is owned by this object through a shared {@link Arena}: every segment returned by
 * {@link #tensorData} is a view that becomes unusable (access throws {@link IllegalStateException})
 * after {@link #close()}. {@code close()} is idempotent. Reading metadata and tensor infos is safe
 * from any thread; everything is parsed and validated in {@link #open}.
 */
public final class GgufFile implements AutoCloseable {
    /** The four magic bytes at offset 0. */
    public static final String MAGIC = "GGUF";
    /** Metadata key holding the data alignment in bytes (uint32). */
    public static final String ALIGNMENT_KEY = "general.alignment";
    /** Alignment when {@link #ALIGNMENT_KEY} is absent. */
    public static final int DEFAULT_ALIGNMENT = 32;

    private final Path path;
    private final Arena arena;
    private final MemorySegment mapping;
    private final int version;
    private final int alignment;
    private final long dataOffset;
    private final Map<String, GgufValue> values;
    private final Map<String, Object> plainValues;
    private final List<GgufTensorInfo> tensors;
    private final Map<String, GgufTensorInfo> tensorsByName;
    private final AtomicBoolean closed = new AtomicBoolean();

    private GgufFile(Path path, Arena arena, MemorySegment mapping, GgufHeader header) {
        this.path = path;
        this.arena = arena;
        this.mapping = mapping;
        this.version = header.version();
        this.alignment = header.alignment();
        this.dataOffset = header.dataOffset();
        this.values = Collections.unmodifiableMap(header.values());
        Map<String, Object> plain = new LinkedHashMap<>();
        header.values().forEach((k, v) -> plain.put(k, v.value()));
        this.plainValues = Collections.unmodifiableMap(plain);
        this.tensors = List.copyOf(header.tensors());
        Map<String, GgufTensorInfo> byName = new LinkedHashMap<>();
        for (GgufTensorInfo t : tensors) {
            byName.put(t.name(), t);
        }
        this.tensorsByName = Collections.unmodifiableMap(byName);
    }

    /**
     * Maps and parses the file; all format errors are found here, none later.
     *
     * @throws GgufFormatException naming the byte offset and what was expected, for a malformed file
     * @throws IOException         if the file cannot be opened or mapped
     */
    public static GgufFile open(Path path) throws IOException {
        Arena arena = Arena.ofShared();
        try {
            MemorySegment mapping;
            try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
                mapping = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
            }
            GgufHeader header = GgufHeader.parse(new GgufReader(mapping));
            return new GgufFile(path, arena, mapping, header);
        } catch (IOException | RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** The path the file was opened from. */
    public Path path() {
        return path;
    }

    /** GGUF version: 2 or 3. */
    public int version() {
        return version;
    }

    /** Data alignment in bytes ({@code general.alignment}, default 32). */
    public int alignment() {
        return alignment;
    }

    /** Absolute byte offset where the tensor data section starts (a multiple of {@link #alignment()}). */
    public long dataOffset() {
        return dataOffset;
    }

    /** File size in bytes. */
    public long fileSize() {
        return mapping.byteSize();
    }

    /**
     * All metadata in file order, each value in the Java form {@link GgufValueType} describes
     * (e.g. {@code uint32 -> Long}, {@code string[] -> String[]}, {@code int32[] -> int[]}).
     * Arrays are this file's own arrays: treat them as read-only (the typed getters return copies).
     */
    public Map<String, Object> metadata() {
        return plainValues;
    }

    /** All metadata in file order with their GGUF types (to copy into a {@link GgufWriter}). */
    public Map<String, GgufValue> metadataValues() {
        return values;
    }

    /** The typed value of {@code key}, if present. */
    public Optional<GgufValue> findValue(String key) {
        return Optional.ofNullable(values.get(key));
    }

    /** @throws IllegalArgumentException naming the key if it is missing or not a string */
    public String getString(String key) {
        return (String) require(key, GgufValueType.STRING).value();
    }

    /** The string at {@code key}, empty if absent. @throws IllegalArgumentException if not a string */
    public Optional<String> findString(String key) {
        return values.containsKey(key) ? Optional.of(getString(key)) : Optional.empty();
    }

    /**
     * An integer of any GGUF integer type as an {@code int}.
     *
     * @throws IllegalArgumentException naming the key if it is missing, not an integer, or outside the int range
     */
    public int getInt(String key) {
        long v = getLong(key);
        if (v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("GGUF metadata key '" + key + "' = " + v + " does not fit an int");
        }
        return (int) v;
    }

    /** Like {@link #getInt(String)} but {@code dflt} when the key is absent. */
    public int getInt(String key, int dflt) {
        return values.containsKey(key) ? getInt(key) : dflt;
    }

    /** An integer of any GGUF integer type as a {@code long} (uint64 above 2^63-1 reads negative). */
    public long getLong(String key) {
        GgufValue v = values.get(key);
        if (v == null || !v.type().isInteger()) {
            throw wrongType(key, v, "an integer");
        }
        return ((Number) v.value()).longValue();
    }

    /**
     * A token id such as {@code tokenizer.ggml.bos_token_id}. Converters write uint32 max
     * (4294967295) for "no such token", so any value outside {@code [0, 2^31)} reads as absent.
     *
     * @throws IllegalArgumentException naming the key if present but not an integer
     */
    public OptionalInt findTokenId(String key) {
        if (!values.containsKey(key)) {
            return OptionalInt.empty();
        }
        long v = getLong(key);
        return v >= 0 && v <= Integer.MAX_VALUE ? OptionalInt.of((int) v) : OptionalInt.empty();
    }

    /** A float32 or float64 as a float. @throws IllegalArgumentException naming the key if missing or not a float */
    public float getFloat(String key) {
        GgufValue v = require(key, GgufValueType.FLOAT32, GgufValueType.FLOAT64);
        return ((Number) v.value()).floatValue();
    }

    /** Like {@link #getFloat(String)} but {@code dflt} when the key is absent. */
    public float getFloat(String key, float dflt) {
        return values.containsKey(key) ? getFloat(key) : dflt;
    }

    /** A bool, or {@code dflt} when absent. @throws IllegalArgumentException naming the key if not a bool */
    public boolean getBool(String key, boolean dflt) {
        return values.containsKey(key) ? (Boolean) require(key, GgufValueType.BOOL).value() : dflt;
    }

    /** A string array (a copy). @throws IllegalArgumentException naming the key if missing or of another type */
    public String[] getStringArray(String key) {
        return ((String[]) requireArray(key, GgufValueType.STRING).value()).clone();
    }

    /** A float32 (or float64, narrowed) array, as a copy. @throws IllegalArgumentException naming the key */
    public float[] getFloatArray(String key) {
        GgufValue v = requireArray(key, GgufValueType.FLOAT32, GgufValueType.FLOAT64);
        if (v.value() instanceof float[] f) {
            return f.clone();
        }
        double[] d = (double[]) v.value();
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) {
            f[i] = (float) d[i];
        }
        return f;
    }

    /**
     * An array of any integer type as {@code int[]} (a copy; unsigned elements zero-extended).
     *
     * @throws IllegalArgumentException naming the key if missing, not an integer array, or an element does not fit an int
     */
    public int[] getIntArray(String key) {
        GgufValue v = requireArray(key, GgufValueType.UINT8, GgufValueType.INT8, GgufValueType.UINT16,
                GgufValueType.INT16, GgufValueType.UINT32, GgufValueType.INT32, GgufValueType.UINT64, GgufValueType.INT64);
        boolean unsigned = switch (v.elementType()) {
            case UINT8, UINT16, UINT32, UINT64 -> true;
            case INT8, INT16, INT32, INT64, FLOAT32, FLOAT64, BOOL, STRING, ARRAY -> false;
        };
        int n = v.arrayLength();
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            long x = switch (v.value()) {
                case byte[] a -> unsigned ? Byte.toUnsignedLong(a[i]) : a[i];
                case short[] a -> unsigned ? Short.toUnsignedLong(a[i]) : a[i];
                case int[] a -> unsigned ? Integer.toUnsignedLong(a[i]) : a[i];
                case long[] a -> a[i];
                default -> throw new IllegalStateException("integer array held as " + v.value().getClass());
            };
            if (x < Integer.MIN_VALUE || x > Integer.MAX_VALUE || (unsigned && x < 0)) {
                throw new IllegalArgumentException("GGUF metadata key '" + key + "' element " + i + " = "
                        + (unsigned ? Long.toUnsignedString(x) : x) + " does not fit an int");
            }
            out[i] = (int) x;
        }
        return out;
    }

    /** Tensor infos in file order. */
    public List<GgufTensorInfo> tensors() {
        return tensors;
    }

    /** The tensor named {@code name}, if present. */
    public Optional<GgufTensorInfo> findTensor(String name) {
        return Optional.ofNullable(tensorsByName.get(name));
    }

    /** @throws IllegalArgumentException naming the tensor if the file has none of that name */
    public GgufTensorInfo tensor(String name) {
        GgufTensorInfo t = tensorsByName.get(name);
        if (t == null) {
            throw new IllegalArgumentException("GGUF file " + path + " has no tensor '" + name + "'");
        }
        return t;
    }

    /**
     * The tensor's bytes: a read-only slice of the mapping, {@link GgufTensorInfo#byteSize()} long,
     * valid until {@link #close()}.
     *
     * @throws IllegalArgumentException if {@code info} is not one of this file's tensors
     * @throws IllegalStateException    if the file is closed
     */
    public MemorySegment tensorData(GgufTensorInfo info) {
        if (!info.equals(tensorsByName.get(info.name()))) {
            throw new IllegalArgumentException("tensor " + info + " is not in GGUF file " + path);
        }
        if (closed.get()) {
            throw new IllegalStateException("GGUF file " + path + " is closed");
        }
        return mapping.asSlice(dataOffset + info.offset(), info.byteSize());
    }

    /** Unmaps the file. Idempotent; tensor segments handed out become unusable. */
    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            arena.close();
        }
    }

    @Override
    public String toString() {
        return "GgufFile[" + path + ", v" + version + ", " + values.size() + " kv, " + tensors.size() + " tensors]";
    }

    private GgufValue require(String key, GgufValueType... accepted) {
        GgufValue v = values.get(key);
        if (v != null) {
            for (GgufValueType t : accepted) {
                if (v.type() == t) {
                    return v;
                }
            }
        }
        throw wrongType(key, v, List.of(accepted).toString());
    }

    private GgufValue requireArray(String key, GgufValueType... acceptedElements) {
        GgufValue v = values.get(key);
        if (v != null && v.type() == GgufValueType.ARRAY) {
            for (GgufValueType t : acceptedElements) {
                if (v.elementType() == t) {
                    return v;
                }
            }
        }
        throw wrongType(key, v, "an array of " + List.of(acceptedElements));
    }

    private IllegalArgumentException wrongType(String key, GgufValue found, String expected) {
        if (found == null) {
            return new IllegalArgumentException("GGUF file " + path + " has no metadata key '" + key + "'");
        }
        String type = found.type() == GgufValueType.ARRAY ? "array of " + found.elementType() : found.type().toString();
        return new IllegalArgumentException("GGUF metadata key '" + key + "' has type " + type + ", expected " + expected);
    }
}
