package io.tandem.kvcache;

/** Element type of the KV cache. */
public enum KvDtype {
    /** IEEE 754 binary32. */
    F32(4),
    /** IEEE 754 binary16 (half the bytes of {@link #F32}). */
    F16(2);

    private final int bytes;

    KvDtype(int bytes) {
        this.bytes = bytes;
    }

    /** Bytes per element. */
    public int bytes() {
        return bytes;
    }

    /**
     * Parses {@code f32}/{@code f16} (case-insensitive).
     *
     * @throws IllegalArgumentException naming the value
     */
    public static KvDtype parse(String name) {
        for (KvDtype d : values()) {
            if (d.name().equalsIgnoreCase(name)) {
                return d;
            }
        }
        throw new IllegalArgumentException("unknown KV cache dtype '" + name + "' (expected f32 or f16)");
    }
}
