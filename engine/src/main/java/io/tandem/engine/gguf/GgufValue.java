package io.tandem.engine.gguf;

import java.lang.reflect.Array;
import java.util.Arrays;
import java.util.Objects;

/**
 * One typed GGUF metadata value: what {@link GgufFile} reads and {@link GgufWriter} writes.
 *
 * <p>The Java class of {@code value} is fixed by the type (see {@link GgufValueType}); the factories
 * check ranges, so {@code uint8(300)} is rejected. Array values are not copied: treat them as
 * read-only once handed over. {@code equals}/{@code hashCode} compare array contents.
 *
 * @param type        the value's GGUF type
 * @param elementType for {@link GgufValueType#ARRAY} the type of its elements, otherwise {@code null}
 * @param value       the Java representation (never {@code null})
 * @throws IllegalArgumentException if the value's class or range does not fit the type
 */
public record GgufValue(GgufValueType type, GgufValueType elementType, Object value) {

    public GgufValue {
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(value, "value");
        if (type == GgufValueType.ARRAY) {
            Objects.requireNonNull(elementType, "elementType of an ARRAY value");
            if (!elementType.arrayClass().isInstance(value)) {
                throw new IllegalArgumentException("array of " + elementType + " needs a "
                        + elementType.arrayClass().getSimpleName() + ", got " + value.getClass().getSimpleName());
            }
            if (elementType == GgufValueType.ARRAY) {
                for (GgufValue inner : (GgufValue[]) value) {
                    if (inner == null || inner.type() != GgufValueType.ARRAY) {
                        throw new IllegalArgumentException("an array of arrays must hold only ARRAY values, got " + inner);
                    }
                }
            }
        } else {
            if (elementType != null) {
                throw new IllegalArgumentException("elementType is only for ARRAY values, got " + elementType + " for " + type);
            }
            if (!type.scalarClass().isInstance(value)) {
                throw new IllegalArgumentException(type + " needs a " + type.scalarClass().getSimpleName()
                        + ", got " + value.getClass().getSimpleName());
            }
            checkRange(type, value);
        }
    }

    private static void checkRange(GgufValueType type, Object value) {
        long[] range = switch (type) {
            case UINT8 -> new long[] {0, 0xFF};
            case INT8 -> new long[] {Byte.MIN_VALUE, Byte.MAX_VALUE};
            case UINT16 -> new long[] {0, 0xFFFF};
            case INT16 -> new long[] {Short.MIN_VALUE, Short.MAX_VALUE};
            case UINT32 -> new long[] {0, 0xFFFF_FFFFL};
            case INT32, UINT64, INT64, FLOAT32, FLOAT64, BOOL, STRING, ARRAY -> null;
        };
        if (range != null) {
            long v = ((Number) value).longValue();
            if (v < range[0] || v > range[1]) {
                throw new IllegalArgumentException(
                        type + " value out of range [" + range[0] + ", " + range[1] + "]: " + v);
            }
        }
    }

    public static GgufValue uint8(int v) {
        return new GgufValue(GgufValueType.UINT8, null, v);
    }

    public static GgufValue int8(int v) {
        return new GgufValue(GgufValueType.INT8, null, v);
    }

    public static GgufValue uint16(int v) {
        return new GgufValue(GgufValueType.UINT16, null, v);
    }

    public static GgufValue int16(int v) {
        return new GgufValue(GgufValueType.INT16, null, v);
    }

    /** A uint32; {@code v} in {@code [0, 4294967295]}. */
    public static GgufValue uint32(long v) {
        return new GgufValue(GgufValueType.UINT32, null, v);
    }

    public static GgufValue int32(int v) {
        return new GgufValue(GgufValueType.INT32, null, v);
    }

    /** A uint64 given by its bits (values above {@link Long#MAX_VALUE} as negative longs). */
    public static GgufValue uint64(long v) {
        return new GgufValue(GgufValueType.UINT64, null, v);
    }

    public static GgufValue int64(long v) {
        return new GgufValue(GgufValueType.INT64, null, v);
    }

    public static GgufValue float32(float v) {
        return new GgufValue(GgufValueType.FLOAT32, null, v);
    }

    public static GgufValue float64(double v) {
        return new GgufValue(GgufValueType.FLOAT64, null, v);
    }

    public static GgufValue bool(boolean v) {
        return new GgufValue(GgufValueType.BOOL, null, v);
    }

    public static GgufValue string(String v) {
        return new GgufValue(GgufValueType.STRING, null, v);
    }

    /**
     * An array; {@code elements} is the Java array {@link GgufValueType} names for the element type,
     * e.g. {@code array(INT32, new int[] {1, 2})} or {@code array(UINT8, new byte[] {(byte) 255})}.
     */
    public static GgufValue array(GgufValueType elementType, Object elements) {
        return new GgufValue(GgufValueType.ARRAY, elementType, elements);
    }

    /** Elements of an ARRAY value. @throws IllegalStateException for a scalar */
    public int arrayLength() {
        if (type != GgufValueType.ARRAY) {
            throw new IllegalStateException("not an array: " + type);
        }
        return Array.getLength(value);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof GgufValue other
                && type == other.type
                && elementType == other.elementType
                && Objects.deepEquals(value, other.value);
    }

    @Override
    public int hashCode() {
        int h = Objects.hash(type, elementType);
        return 31 * h + Arrays.deepHashCode(new Object[] {value});
    }

    @Override
    public String toString() {
        if (type != GgufValueType.ARRAY) {
            return type + ":" + value;
        }
        int n = Array.getLength(value);
        StringBuilder sb = new StringBuilder("ARRAY<").append(elementType).append(">[").append(n).append("]{");
        for (int i = 0; i < Math.min(n, 8); i++) {
            sb.append(i == 0 ? "" : ", ").append(Array.get(value, i));
        }
        return sb.append(n > 8 ? ", ...}" : "}").toString();
    }
}
