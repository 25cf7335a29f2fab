package io.tandem.engine.gguf;

import java.io.IOException;

/**
 * A GGUF file is malformed or uses something Tandem does not read: bad magic, unsupported version,
 * truncated data, unknown value type, unsupported tensor type, tensor data outside the file.
 *
 * <p>It is an {@link IOException} because it is found while reading a file, next to real I/O
 * errors, and callers of {@link GgufFile#open} handle both the same way (refuse the model).
 * The message always names the byte offset (from the start of the file) and what was expected
 * there; {@link #offset()} returns the same offset.
 */
public final class GgufFormatException extends IOException {
    private static final long serialVersionUID = 1L;
    private final long offset;

    /**
     * @param offset  byte offset in the file where the problem was found
     * @param message what was expected and what was found
     */
    public GgufFormatException(long offset, String message) {
        super("GGUF format error at byte offset " + offset + ": " + message);
        this.offset = offset;
    }

    /** Byte offset in the file where the problem was found. */
    public long offset() {
        return offset;
    }
}
