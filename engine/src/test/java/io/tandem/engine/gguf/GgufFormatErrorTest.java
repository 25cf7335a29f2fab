package io.tandem.engine.gguf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Corrupted copies of the stories260K GGUF must fail in {@link GgufFile#open} with a precise message. */
class GgufFormatErrorTest {
    /**
     * Offsets in stories260K.gguf: the header is 24 bytes; the first key "tokenizer.ggml.tokens"
     * (21 bytes) ends at 24 + 8 + 21 = 53, where its value type id is.
     */
    private static final int FIRST_VALUE_TYPE_AT = 53;

    @TempDir
    Path dir;

    private static byte[] original() throws IOException {
        return Files.readAllBytes(GgufFileTest.STORIES);
    }

    private Path write(byte[] bytes) throws IOException {
        Path p = dir.resolve("corrupt.gguf");
        Files.write(p, bytes);
        return p;
    }

    private static void putU32(byte[] b, int at, long v) {
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt(at, (int) v);
    }

    private static void putU64(byte[] b, int at, long v) {
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(at, v);
    }

    /** Offset of the tensor info of token_embd.weight: its name is the first occurrence of the string. */
    private static int tokenEmbdInfoAt(byte[] b) {
        byte[] name = "token_embd.weight".getBytes(StandardCharsets.US_ASCII);
        for (int i = 0; i + name.length <= b.length; i++) {
            if (Arrays.equals(b, i, i + name.length, name, 0, name.length)) {
                return i - 8; // the uint64 length comes first
            }
        }
        throw new AssertionError("token_embd.weight not found");
    }

    @Test
    void shouldRejectBadMagicAtOffsetZero() throws Exception {
        byte[] b = original();
        b[0] = 'X';
        assertThatThrownBy(() -> GgufFile.open(write(b)))
                .isInstanceOf(GgufFormatException.class)
                .hasMessageContaining("byte offset 0").hasMessageContaining("bad magic")
                .hasMessageContaining("58 47 55 46");
    }

    @Test
    void shouldRejectVersionOne() throws Exception {
        byte[] b = original();
        putU32(b, 4, 1);
        assertThatThrownBy(() -> GgufFile.open(write(b)))
                .isInstanceOf(GgufFormatException.class)
                .hasMessageContaining("byte offset 4").hasMessageContaining("unsupported GGUF version 1");
    }

    @Test
    void shouldRejectBigEndianFileAsUnsupportedVersion() throws Exception {
        byte[] b = original();
        putU32(b, 4, 0x0300_0000L);
        assertThatThrownBy(() -> GgufFile.open(write(b)))
                .isInstanceOf(GgufFormatException.class).hasMessageContaining("big-endian");
    }

    @Test
    void shouldRejectFileTruncatedInsideMetadata() throws Exception {
        byte[] b = Arrays.copyOf(original(), 10_000);
        GgufFormatException e = assertThrows(GgufFormatException.class,
                () -> GgufFile.open(write(b)));
        assertThat(e.getMessage()).contains("file truncated").contains("file size 10000");
        assertThat(e.offset()).isBetween(6470L, 10_000L);
    }

    @Test
    void shouldRejectFileTruncatedInsideTensorData() throws Exception {
        byte[] full = original();
        byte[] b = Arrays.copyOf(full, full.length - 100);
        // blk.4.ffn_norm.weight is the last tensor in the data section.
        assertThatThrownBy(() -> GgufFile.open(write(b)))
                .isInstanceOf(GgufFormatException.class)
                .hasMessageContaining("tensor 'blk.4.ffn_norm.weight'").hasMessageContaining("lies outside the data section");
    }

    @Test
    void shouldRejectTensorWhoseOffsetPointsOutsideTheFile() throws Exception {
        byte[] b = original();
        int info = tokenEmbdInfoAt(b);
        int offsetAt = info + 8 + 17 + 4 + 2 * 8 + 4; // name, n_dims, 2 dims, type
        putU64(b, offsetAt, 1L << 30);
        assertThatThrownBy(() -> GgufFile.open(write(b)))
                .isInstanceOf(GgufFormatException.class)
                .hasMessageContaining("byte offset " + info)
                .hasMessageContaining("tensor 'token_embd.weight' data [1073741824, 1073872896) lies outside");
    }

    @Test
    void shouldRejectMisalignedTensorOffset() throws Exception {
        byte[] b = original();
        int offsetAt = tokenEmbdInfoAt(b) + 8 + 17 + 4 + 2 * 8 + 4;
        putU64(b, offsetAt, 4);
        assertThatThrownBy(() -> GgufFile.open(write(b)))
                .isInstanceOf(GgufFormatException.class)
                .hasMessageContaining("expected a multiple of the alignment 32");
    }

    @Test
    void shouldNameUnsupportedTensorTypeId() throws Exception {
        byte[] b = original();
        int typeAt = tokenEmbdInfoAt(b) + 8 + 17 + 4 + 2 * 8;
        putU32(b, typeAt, 12); // Q4_K
        assertThatThrownBy(() -> GgufFile.open(write(b)))
                .isInstanceOf(GgufFormatException.class)
                .hasMessageContaining("byte offset " + typeAt)
                .hasMessageContaining("tensor 'token_embd.weight'")
                .hasMessageContaining("unsupported ggml tensor type id 12");
    }

    @Test
    void shouldNameUnknownMetadataValueType() throws Exception {
        byte[] b = original();
        putU32(b, FIRST_VALUE_TYPE_AT, 99);
        assertThatThrownBy(() -> GgufFile.open(write(b)))
                .isInstanceOf(GgufFormatException.class)
                .hasMessageContaining("byte offset " + FIRST_VALUE_TYPE_AT)
                .hasMessageContaining("unknown GGUF value type id 99")
                .hasMessageContaining("'tokenizer.ggml.tokens'");
    }

    @Test
    void shouldRejectArrayLongerThanTheFile() throws Exception {
        byte[] b = original();
        putU64(b, FIRST_VALUE_TYPE_AT + 8, 1L << 40); // element count of the tokens array
        assertThatThrownBy(() -> GgufFile.open(write(b)))
                .isInstanceOf(GgufFormatException.class)
                .hasMessageContaining("claims 1099511627776 elements of STRING");
    }

    @Test
    void shouldRejectEmptyFile() throws Exception {
        assertThatThrownBy(() -> GgufFile.open(write(new byte[0])))
                .isInstanceOf(GgufFormatException.class)
                .hasMessageContaining("byte offset 0").hasMessageContaining("magic");
    }
}
