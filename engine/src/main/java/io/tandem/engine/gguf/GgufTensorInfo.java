package io.tandem.engine.gguf;

import io.tandem.engine.tensor.GgmlType;
import java.util.Arrays;
import java.util.Objects;

/**
 * One entry of a GGUF file's tensor table.
 *
 * <p>{@code dims} are ggml's {@code ne}, fastest-varying first, exactly as written in the file:
 * a weight matrix stored row-major as {@code [rows][cols]} has {@code dims = [cols, rows]}
 * (e.g. stories260K {@code token_embd.weight} is {@code [64, 512]}: 512 rows of 64).
 * The array is copied in and out, so the record is immutable.
 *
 * @param name   tensor name, e.g. {@code blk.0.attn_q.weight}
 * @param type   element type
 * @param dims   {@code ne0, ne1, ...}; 0 to 4 entries, each {@code >= 0}
 * @param offset byte offset of the data relative to the start of the tensor data section
 *               ({@link GgufFile#dataOffset()}), a multiple of the file's alignment
 */
public record GgufTensorInfo(String name, GgmlType type, long[] dims, long offset) {

    /** ggml's {@code GGML_MAX_DIMS}. */
    public static final int MAX_DIMS = 4;

    public GgufTensorInfo {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(type, "type");
        dims = dims.clone();
        if (dims.length > MAX_DIMS) {
            throw new IllegalArgumentException("tensor '" + name + "' has " + dims.length + " dims, at most " + MAX_DIMS);
        }
        for (long d : dims) {
            if (d < 0) {
                throw new IllegalArgumentException("tensor '" + name + "' has a negative dim: " + Arrays.toString(dims));
            }
        }
        if (dims.length > 0 && dims[0] % type.blockSize() != 0) {
            throw new IllegalArgumentException("tensor '" + name + "' of type " + type + " needs ne0 to be a multiple of "
                    + type.blockSize() + ", got " + dims[0]);
        }
        if (offset < 0) {
            throw new IllegalArgumentException("tensor '" + name + "' has a negative offset " + offset);
        }
        numElements(name, dims);
    }

    /** The dims, ne0 first (a copy). */
    @Override
    public long[] dims() {
        return dims.clone();
    }

    /** Number of dims ({@code n_dims} in the file). */
    public int nDims() {
        return dims.length;
    }

    /** {@code ne[i]}, or 1 for {@code i >= nDims()} as in ggml. */
    public long dim(int i) {
        return i < dims.length ? dims[i] : 1;
    }

    /** Product of the dims. */
    public long numElements() {
        return numElements(name, dims);
    }

    /** Bytes of tensor data: {@code numElements / blockSize * typeSize}. */
    public long byteSize() {
        return type.byteSize(numElements());
    }

    private static long numElements(String name, long[] dims) {
        long n = 1;
        for (long d : dims) {
            try {
                n = Math.multiplyExact(n, d);
            } catch (ArithmeticException e) {
                throw new IllegalArgumentException("tensor '" + name + "' dims overflow a long: " + Arrays.toString(dims), e);
            }
        }
        return n;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof GgufTensorInfo other && name.equals(other.name) && type == other.type
                && Arrays.equals(dims, other.dims) && offset == other.offset;
    }

    @Override
    public int hashCode() {
        return Objects.hash(name, type, Arrays.hashCode(dims), offset);
    }

    @Override
    public String toString() {
        return "GgufTensorInfo[" + name + ", " + type + ", " + Arrays.toString(dims) + ", offset=" + offset + "]";
    }
}
