package io.tandem.engine.gguf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tandem.engine.tensor.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GgufWriterTest {
    @TempDir
    Path dir;

    private static Map<String, GgufValue> everyValueType() {
        Map<String, GgufValue> m = new LinkedHashMap<>();
        m.put("t.uint8", GgufValue.uint8(255));
        m.put("t.int8", GgufValue.int8(-128));
        m.put("t.uint16", GgufValue.uint16(65535));
        m.put("t.int16", GgufValue.int16(-32768));
        m.put("t.uint32", GgufValue.uint32(4_294_967_295L));
        m.put("t.int32", GgufValue.int32(Integer.MIN_VALUE));
        m.put("t.float32", GgufValue.float32(-1.5e-7f));
        m.put("t.bool", GgufValue.bool(true));
        m.put("t.string", GgufValue.string("héllo ▁ 🦙"));
        m.put("t.uint64", GgufValue.uint64(-1L));
        m.put("t.int64", GgufValue.int64(Long.MIN_VALUE));
        m.put("t.float64", GgufValue.float64(Math.PI));
        m.put("a.uint8", GgufValue.array(GgufValueType.UINT8, new byte[] {0, (byte) 255}));
        m.put("a.int8", GgufValue.array(GgufValueType.INT8, new byte[] {-1, 127}));
        m.put("a.uint16", GgufValue.array(GgufValueType.UINT16, new short[] {(short) 65535}));
        m.put("a.int16", GgufValue.array(GgufValueType.INT16, new short[] {-2, 3}));
        m.put("a.uint32", GgufValue.array(GgufValueType.UINT32, new int[] {-1, 7}));
        m.put("a.int32", GgufValue.array(GgufValueType.INT32, new int[] {1, 2, 6}));
        m.put("a.float32", GgufValue.array(GgufValueType.FLOAT32, new float[] {0.5f, Float.NaN, -0f}));
        m.put("a.bool", GgufValue.array(GgufValueType.BOOL, new boolean[] {true, false}));
        m.put("a.string", GgufValue.array(GgufValueType.STRING, new String[] {"", "a b", "日本"}));
        m.put("a.uint64", GgufValue.array(GgufValueType.UINT64, new long[] {Long.MIN_VALUE}));
        m.put("a.int64", GgufValue.array(GgufValueType.INT64, new long[] {-5, 5}));
        m.put("a.float64", GgufValue.array(GgufValueType.FLOAT64, new double[] {1e300}));
        m.put("a.empty", GgufValue.array(GgufValueType.INT32, new int[0]));
        m.put("a.nested", GgufValue.array(GgufValueType.ARRAY, new GgufValue[] {
                GgufValue.array(GgufValueType.STRING, new String[] {"x"}),
                GgufValue.array(GgufValueType.ARRAY, new GgufValue[] {GgufValue.array(GgufValueType.INT16, new short[] {9})})}));
        return m;
    }

    @Test
    void shouldRoundTripEveryMetadataValueType() throws Exception {
        Map<String, GgufValue> values = everyValueType();
        Path p = dir.resolve("kv.gguf");
        new GgufWriter().putAll(values).write(p);
        try (GgufFile gguf = GgufFile.open(p)) {
            assertThat(gguf.version()).isEqualTo(3);
            assertThat(gguf.metadataValues()).containsExactlyEntriesOf(values);
            assertThat(gguf.tensors()).isEmpty();
            assertThat(gguf.getInt("t.uint16")).isEqualTo(65535);
            assertThat(gguf.getLong("t.uint64")).isEqualTo(-1L);
            assertThat(gguf.getIntArray("a.uint8")).containsExactly(0, 255);
            assertThat(gguf.getIntArray("a.int8")).containsExactly(-1, 127);
            assertThat(gguf.getFloatArray("a.float64")).containsExactly(Float.POSITIVE_INFINITY);
            assertThat(gguf.getBool("t.bool", false)).isTrue();
            assertThatThrownBy(() -> gguf.getIntArray("a.uint32"))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("4294967295");
        }
    }

    @Test
    void shouldRoundTripOneTensorOfEachGgmlTypeAtAlignedOffsets() throws Exception {
        Map<GgmlType, long[]> shapes = new LinkedHashMap<>();
        shapes.put(GgmlType.F32, new long[] {3, 2});
        shapes.put(GgmlType.F16, new long[] {5});
        shapes.put(GgmlType.Q4_0, new long[] {32, 2});
        shapes.put(GgmlType.Q8_0, new long[] {64});
        shapes.put(GgmlType.BF16, new long[] {4, 1, 1});
        Random random = new Random(42);
        List<byte[]> contents = new ArrayList<>();
        GgufWriter writer = new GgufWriter().putString("general.architecture", "test");
        try (Arena arena = Arena.ofConfined()) {
            for (var e : shapes.entrySet()) {
                long n = 1;
                for (long d : e.getValue()) {
                    n *= d;
                }
                byte[] bytes = new byte[(int) e.getKey().byteSize(n)];
                random.nextBytes(bytes);
                contents.add(bytes);
                MemorySegment seg = arena.allocate(bytes.length);
                seg.copyFrom(MemorySegment.ofArray(bytes));
                writer.addTensor(e.getKey().name().toLowerCase() + ".weight", e.getKey(), e.getValue(), seg);
            }
            Path p = dir.resolve("tensors.gguf");
            writer.write(p);
            try (GgufFile gguf = GgufFile.open(p)) {
                assertThat(gguf.dataOffset() % 32).isZero();
                assertThat(gguf.tensors()).extracting(GgufTensorInfo::type).containsExactlyElementsOf(shapes.keySet());
                // F32 [3,2] = 24 bytes, padded to 32; F16 [5] = 10 -> 32; Q4_0 [32,2] = 2 x 18 -> 64;
                // Q8_0 [64] = 2 x 34 -> 96; BF16 [4,1,1] = 8 -> 32.
                assertThat(gguf.tensors()).extracting(GgufTensorInfo::offset).containsExactly(0L, 32L, 64L, 128L, 224L);
                for (int i = 0; i < contents.size(); i++) {
                    GgufTensorInfo t = gguf.tensors().get(i);
                    assertThat(t.dims()).containsExactly(shapes.get(t.type()));
                    assertThat(gguf.tensorData(t).toArray(ValueLayout.JAVA_BYTE)).isEqualTo(contents.get(i));
                }
                assertThat(gguf.fileSize()).isEqualTo(gguf.dataOffset() + 224 + 32);
            }
        }
    }

    @Test
    void shouldHonourCustomAlignment() throws Exception {
        Path p = dir.resolve("aligned.gguf");
        new GgufWriter().putUint32(GgufFile.ALIGNMENT_KEY, 64)
                .addTensor("a", GgmlType.F32, new long[] {1}, MemorySegment.ofArray(new byte[4]))
                .addTensor("b", GgmlType.F32, new long[] {1}, MemorySegment.ofArray(new byte[] {1, 2, 3, 4}))
                .write(p);
        try (GgufFile gguf = GgufFile.open(p)) {
            assertThat(gguf.alignment()).isEqualTo(64);
            assertThat(gguf.dataOffset() % 64).isZero();
            assertThat(gguf.tensor("b").offset()).isEqualTo(64);
            assertThat(gguf.tensorData(gguf.tensor("b")).toArray(ValueLayout.JAVA_BYTE))
                    .containsExactly(1, 2, 3, 4);
        }
    }

    @Test
    void shouldStreamTensorDataFromSource() throws Exception {
        Path p = dir.resolve("streamed.gguf");
        int rows = 100;
        new GgufWriter().addTensor("big", GgmlType.F32, new long[] {64, rows}, out -> {
            byte[] row = new byte[64 * 4];
            for (int r = 0; r < rows; r++) {
                Arrays.fill(row, (byte) r);
                out.write(row);
            }
            out.close(); // must not close the file
        }).addTensor("after", GgmlType.F32, new long[] {2}, MemorySegment.ofArray(new float[] {1f, 2f})).write(p);
        try (GgufFile gguf = GgufFile.open(p)) {
            MemorySegment big = gguf.tensorData(gguf.tensor("big"));
            assertThat(big.byteSize()).isEqualTo(64L * 4 * rows);
            assertThat(big.get(ValueLayout.JAVA_BYTE, 64L * 4 * 99)).isEqualTo((byte) 99);
            assertThat(gguf.tensorData(gguf.tensor("after")).toArray(ValueLayout.JAVA_FLOAT))
                    .containsExactly(1f, 2f);
        }
    }

    @Test
    void shouldRejectSourceThatWritesTheWrongNumberOfBytes() {
        GgufWriter w = new GgufWriter().addTensor("short", GgmlType.F32, new long[] {4}, out -> out.write(new byte[15]));
        assertThatThrownBy(() -> w.write(dir.resolve("bad.gguf")))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("'short'").hasMessageContaining("wrote 15 bytes, expected 16");
    }

    @Test
    void shouldRejectDuplicatesAndMismatchedData() {
        GgufWriter w = new GgufWriter().putString("k", "v")
                .addTensor("t", GgmlType.F32, new long[] {1}, MemorySegment.ofArray(new byte[4]));
        assertThatThrownBy(() -> w.putInt32("k", 1)).hasMessageContaining("'k'");
        assertThatThrownBy(() -> w.addTensor("t", GgmlType.F32, new long[] {1}, MemorySegment.ofArray(new byte[4])))
                .hasMessageContaining("'t'");
        assertThatThrownBy(() -> w.addTensor("u", GgmlType.F32, new long[] {2}, MemorySegment.ofArray(new byte[4])))
                .hasMessageContaining("needs 8 bytes");
        assertThatThrownBy(() -> w.addTensor("q", GgmlType.Q8_0, new long[] {16, 2}, out -> { }))
                .hasMessageContaining("multiple of 32");
        assertThatThrownBy(() -> GgufValue.uint8(256)).hasMessageContaining("out of range");
    }

    @Test
    void shouldRewriteStoriesModelByteForByte() throws Exception {
        Path copy = dir.resolve("stories-copy.gguf");
        try (GgufFile src = GgufFile.open(GgufFileTest.STORIES)) {
            GgufWriter w = new GgufWriter().putAll(src.metadataValues());
            for (GgufTensorInfo t : src.tensors()) {
                w.addTensor(t.name(), t.type(), t.dims(), src.tensorData(t));
            }
            w.write(copy);
        }
        assertThat(sha256(copy)).isEqualTo("270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d");
    }

    private static String sha256(Path p) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(p)));
    }
}
