package io.tandem.engine.gguf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tandem.engine.tensor.GgmlType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/** Reads the real stories260K GGUF and checks it against the facts in its SOURCE.md. */
class GgufFileTest {
    static final Path STORIES = Path.of(System.getProperty("tandem.shared.dir", "../../shared"),
            "models", "stories260K", "stories260K.gguf");

    @Test
    void shouldReadHeaderOfStoriesModel() throws Exception {
        try (GgufFile gguf = GgufFile.open(STORIES)) {
            assertThat(gguf.version()).isEqualTo(3);
            assertThat(gguf.metadata()).hasSize(19);
            assertThat(gguf.tensors()).hasSize(48);
            assertThat(gguf.alignment()).isEqualTo(32);
            assertThat(gguf.dataOffset()).isEqualTo(14176);
            assertThat(gguf.fileSize()).isEqualTo(1_185_376);
            assertThat(gguf.metadata().keySet()).startsWith("tokenizer.ggml.tokens", "tokenizer.ggml.scores");
        }
    }

    @Test
    void shouldReadTypedMetadataOfStoriesModel() throws Exception {
        try (GgufFile gguf = GgufFile.open(STORIES)) {
            assertThat(gguf.getString("general.architecture")).isEqualTo("llama");
            assertThat(gguf.getInt("llama.context_length")).isEqualTo(2048);
            assertThat(gguf.getInt("llama.embedding_length")).isEqualTo(64);
            assertThat(gguf.getInt("llama.feed_forward_length")).isEqualTo(172);
            assertThat(gguf.getInt("llama.block_count")).isEqualTo(5);
            assertThat(gguf.getInt("llama.attention.head_count_kv")).isEqualTo(4);
            assertThat(gguf.getInt("llama.rope.freq_base", 10000)).isEqualTo(10000);
            assertThat(gguf.getFloat("llama.attention.layer_norm_rms_epsilon", 0f)).isEqualTo(1e-5f);
            assertThat(gguf.metadata().get("llama.context_length")).isEqualTo(2048L);
            assertThat(gguf.findValue("llama.context_length").orElseThrow().type()).isEqualTo(GgufValueType.UINT32);

            String[] tokens = gguf.getStringArray("tokenizer.ggml.tokens");
            assertThat(tokens).hasSize(512);
            assertThat(Arrays.copyOf(tokens, 4)).containsExactly("<unk>", "<s>", "</s>", "<0x00>");
            assertThat(tokens[403]).isEqualTo("\u2581Once");
            assertThat(gguf.getFloatArray("tokenizer.ggml.scores")).hasSize(512);
            Map<Integer, Long> typeCounts = Arrays.stream(gguf.getIntArray("tokenizer.ggml.token_type")).boxed()
                    .collect(Collectors.groupingBy(t -> t, Collectors.counting()));
            assertThat(typeCounts).containsExactlyInAnyOrderEntriesOf(Map.of(1, 253L, 2, 1L, 3, 2L, 6, 256L));
        }
    }

    @Test
    void shouldTreatUint32MaxTokenIdAsAbsent() throws Exception {
        try (GgufFile gguf = GgufFile.open(STORIES)) {
            assertThat(gguf.findTokenId("tokenizer.ggml.bos_token_id")).hasValue(1);
            assertThat(gguf.findTokenId("tokenizer.ggml.eos_token_id")).hasValue(2);
            assertThat(gguf.findTokenId("tokenizer.ggml.unknown_token_id")).hasValue(0);
            assertThat(gguf.getLong("tokenizer.ggml.seperator_token_id")).isEqualTo(4_294_967_295L);
            assertThat(gguf.findTokenId("tokenizer.ggml.seperator_token_id")).isEmpty();
            assertThat(gguf.findTokenId("tokenizer.ggml.no_such_id")).isEmpty();
            assertThatThrownBy(() -> gguf.getInt("tokenizer.ggml.padding_token_id"))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("tokenizer.ggml.padding_token_id").hasMessageContaining("4294967295");
        }
    }

    @Test
    void shouldNameTheKeyWhenMetadataIsMissingOrOfAnotherType() throws Exception {
        try (GgufFile gguf = GgufFile.open(STORIES)) {
            assertThatThrownBy(() -> gguf.getString("general.license"))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'general.license'");
            assertThatThrownBy(() -> gguf.getString("llama.block_count"))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("'llama.block_count'").hasMessageContaining("UINT32");
            assertThatThrownBy(() -> gguf.getFloatArray("tokenizer.ggml.tokens"))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("'tokenizer.ggml.tokens'").hasMessageContaining("array of STRING");
            assertThat(gguf.findString("general.license")).isEmpty();
            assertThat(gguf.findString("general.name")).hasValue("llama");
            assertThat(gguf.getInt("llama.expert_count", 0)).isZero();
        }
    }

    @Test
    void shouldListTensorsWithGgmlDimsAndOffsets() throws Exception {
        try (GgufFile gguf = GgufFile.open(STORIES)) {
            GgufTensorInfo embd = gguf.tensor("token_embd.weight");
            assertThat(embd.type()).isEqualTo(GgmlType.F32);
            assertThat(embd.dims()).containsExactly(64, 512);
            assertThat(embd.offset()).isZero();
            assertThat(embd.numElements()).isEqualTo(64 * 512);
            assertThat(embd.byteSize()).isEqualTo(64 * 512 * 4);
            assertThat(gguf.tensor("blk.4.ffn_down.weight").dims()).containsExactly(172, 64);
            assertThat(gguf.tensor("blk.0.attn_k.weight").dims()).containsExactly(64, 32);
            assertThat(gguf.tensors()).allSatisfy(t -> {
                assertThat(t.type()).isEqualTo(GgmlType.F32);
                assertThat(t.offset() % 32).isZero();
            });
            long end = gguf.tensors().stream().mapToLong(t -> t.offset() + t.byteSize()).max().orElseThrow();
            assertThat(gguf.dataOffset() + end).as("data ends exactly at the end of the file").isEqualTo(gguf.fileSize());
            assertThat(gguf.findTensor("blk.5.attn_q.weight")).isEmpty();
            assertThatThrownBy(() -> gguf.tensor("blk.5.attn_q.weight"))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'blk.5.attn_q.weight'");
        }
    }

    @Test
    void shouldSliceTensorDataFromTheMapping() throws Exception {
        try (GgufFile gguf = GgufFile.open(STORIES)) {
            MemorySegment embd = gguf.tensorData(gguf.tensor("token_embd.weight"));
            MemorySegment output = gguf.tensorData(gguf.tensor("output.weight"));
            assertThat(embd.byteSize()).isEqualTo(131072);
            assertThat(embd.isReadOnly()).isTrue();
            // SOURCE.md: the classifier is stored separately but equals the token embedding.
            assertThat(embd.mismatch(output)).isEqualTo(-1);
            MemorySegment norm = gguf.tensorData(gguf.tensor("output_norm.weight"));
            float first = norm.get(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
            assertThat(first).isFinite().isNotZero();
        }
    }

    @Test
    void shouldInvalidateTensorDataOnCloseAndAllowClosingTwice() throws Exception {
        GgufFile gguf = GgufFile.open(STORIES);
        GgufTensorInfo info = gguf.tensor("output_norm.weight");
        MemorySegment data = gguf.tensorData(info);
        gguf.close();
        gguf.close();
        assertThatThrownBy(() -> data.get(ValueLayout.JAVA_BYTE, 0)).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> gguf.tensorData(info)).isInstanceOf(IllegalStateException.class);
        assertThat(gguf.getInt("llama.block_count")).as("metadata stays readable").isEqualTo(5);
    }
}
