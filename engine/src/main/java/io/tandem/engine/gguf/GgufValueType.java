package io.tandem.engine.gguf;

/**
 * Metadata value types of the GGUF format ({@code enum gguf_type} in ggml's gguf.h and
 * {@code docs/gguf.md}), with the Java representation {@link GgufValue} uses for each.
 *
 * <p>Scalars: 8/16-bit integers and {@code INT32} are {@link Integer} (unsigned ones zero-extended),
 * {@code UINT32}, {@code UINT64} and {@code INT64} are {@link Long} ({@code UINT64} above
 * {@link Long#MAX_VALUE} wraps to negative), floats are {@link Float} / {@link Double}, {@code BOOL}
 * is {@link Boolean}, {@code STRING} is {@link String}.
 *
 * <p>Arrays keep the raw bits in the narrowest primitive array: {@code byte[]} for 8-bit,
 * {@code short[]} for 16-bit, {@code int[]} for 32-bit and {@code long[]} for 64-bit integers
 * (unsigned element values above the signed maximum read as negative), {@code float[]},
 * {@code double[]}, {@code boolean[]}, {@code String[]}; an array of arrays is a {@link GgufValue}{@code []}
 * whose elements are all of type {@link #ARRAY}.
 */
public enum GgufValueType {
    UINT8(0, 1, Integer.class, byte[].class),
    INT8(1, 1, Integer.class, byte[].class),
    UINT16(2, 2, Integer.class, short[].class),
    INT16(3, 2, Integer.class, short[].class),
    UINT32(4, 4, Long.class, int[].class),
    INT32(5, 4, Integer.class, int[].class),
    FLOAT32(6, 4, Float.class, float[].class),
    BOOL(7, 1, Boolean.class, boolean[].class),
    STRING(8, 0, String.class, String[].class),
    ARRAY(9, 0, null, GgufValue[].class),
    UINT64(10, 8, Long.class, long[].class),
    INT64(11, 8, Long.class, long[].class),
    FLOAT64(12, 8, Double.class, double[].class);

    private final int id;
    private final int fixedSize;
    private final Class<?> scalarClass;
    private final Class<?> arrayClass;

    GgufValueType(int id, int fixedSize, Class<?> scalarClass, Class<?> arrayClass) {
        this.id = id;
        this.fixedSize = fixedSize;
        this.scalarClass = scalarClass;
        this.arrayClass = arrayClass;
    }

    /** The {@code gguf_type} id written in the file (uint32). */
    public int id() {
        return id;
    }

    /** Bytes one value occupies in the file, or {@code 0} for the variable-size STRING and ARRAY. */
    public int fixedSize() {
        return fixedSize;
    }

    /** Whether the type is one of the integer types (signed or unsigned, any width). */
    public boolean isInteger() {
        return switch (this) {
            case UINT8, INT8, UINT16, INT16, UINT32, INT32, UINT64, INT64 -> true;
            case FLOAT32, FLOAT64, BOOL, STRING, ARRAY -> false;
        };
    }

    /** Java class of a scalar value of this type; {@code null} for {@link #ARRAY}. */
    Class<?> scalarClass() {
        return scalarClass;
    }

    /** Java class of an array whose elements have this type. */
    Class<?> arrayClass() {
        return arrayClass;
    }

    /**
     * The type with the given id, or {@code null} when the id is not a GGUF value type (the reader
     * turns that into a {@link GgufFormatException} naming the offset).
     */
    static GgufValueType fromIdOrNull(long id) {
        for (GgufValueType t : values()) {
            if (t.id == id) {
                return t;
            }
        }
        return null;
    }
}
