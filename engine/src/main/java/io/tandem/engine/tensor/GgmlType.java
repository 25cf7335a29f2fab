package io.tandem.engine.tensor;

/**
 * Tensor element types of the GGML/GGUF format that Tandem reads and writes.
 *
 * <p>Ids, block sizes and byte sizes are those of {@code enum ggml_type} in ggml.h: a quantized
 * type packs {@link #blockSize()} elements into {@link #typeSize()} bytes. Q8_0 = one f16 scale
 * {@code d} then 32 int8 {@code q}, value {@code d*q}. Q4_0 = one f16 scale then 16 bytes holding
 * 32 4-bit values (element {@code j} in the low nibble of byte {@code j}, element {@code j+16} in
 * the high nibble), value {@code d*(nibble-8)}.
 */
public enum GgmlType {
    F32(0, 1, 4),
    F16(1, 1, 2),
    Q4_0(2, 32, 18),
    Q8_0(8, 32, 34),
    BF16(30, 1, 2);

    private final int id;
    private final int blockSize;
    private final int typeSize;

    GgmlType(int id, int blockSize, int typeSize) {
        this.id = id;
        this.blockSize = blockSize;
        this.typeSize = typeSize;
    }

    /** The {@code ggml_type} id stored in GGUF tensor infos. */
    public int id() {
        return id;
    }

    /** Elements per quantization block (1 for plain float types). */
    public int blockSize() {
        return blockSize;
    }

    /** Bytes per block. */
    public int typeSize() {
        return typeSize;
    }

    /**
     * Bytes needed for {@code numElements} elements.
     *
     * @throws IllegalArgumentException if {@code numElements} is not a multiple of the block size
     */
    public long byteSize(long numElements) {
        if (numElements % blockSize != 0) {
            throw new IllegalArgumentException(
                    name() + " needs a multiple of " + blockSize + " elements, got " + numElements);
        }
        return numElements / blockSize * typeSize;
    }

    /**
     * The type with the given {@code ggml_type} id.
     *
     * @throws IllegalArgumentException for an id Tandem does not support, naming it
     */
    public static GgmlType fromId(int id) {
        for (GgmlType t : values()) {
            if (t.id == id) {
                return t;
            }
        }
        throw new IllegalArgumentException("unsupported ggml tensor type id " + id
                + " (supported: F32=0, F16=1, Q4_0=2, Q8_0=8, BF16=30)");
    }
}
