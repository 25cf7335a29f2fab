package io.tandem.engine.model;

import io.tandem.engine.backend.RopeStyle;
import io.tandem.engine.gguf.GgufFile;
import io.tandem.engine.gguf.GgufTensorInfo;
import io.tandem.engine.tensor.GgmlType;
import io.tandem.engine.tensor.WeightMatrix;
import io.tandem.engine.tokenizer.Tokenizer;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.Optional;
import java.util.Set;

/**
 * Builds a {@link LlamaModel} from a GGUF file (llama.cpp's {@code LLM_ARCH_LLAMA},
 * {@code LLM_ARCH_QWEN2}, {@code LLM_ARCH_MISTRAL} tensor names and metadata keys). Weights stay
 * in the memory-mapped file; only the 1-D norm and bias vectors are copied to the heap.
 */
public final class GgufModelLoader {
    private static final Set<String> ARCHITECTURES = Set.of("llama", "qwen2", "mistral");
    /** RoPE theta used when a GGUF has no {@code rope.freq_base} (llama.cpp's default). */
    private static final float DEFAULT_ROPE_THETA = 10_000f;
    private static final float DEFAULT_RMS_EPS = 1e-5f;

    private GgufModelLoader() {}

    /**
     * Loads the model at {@code path}.
     *
     * @param maxModelLen context length to serve, or 0 for the file's {@code context_length}
     * @throws IOException              if the file cannot be read or is not valid GGUF
     * @throws IllegalArgumentException for an unsupported architecture or tensor type, naming it
     */
    public static LlamaModel load(Path path, int maxModelLen) throws IOException {
        GgufFile gguf = GgufFile.open(path);
        try {
            ModelConfig config = readConfig(gguf, maxModelLen);
            LlamaWeights weights = readWeights(gguf, config);
            Tokenizer tokenizer = Tokenizer.fromGguf(gguf);
            if (tokenizer.vocabSize() != config.vocabSize()) {
                throw new IllegalArgumentException("tokenizer has " + tokenizer.vocabSize()
                        + " tokens but token_embd.weight has " + config.vocabSize() + " rows");
            }
            String template = gguf.findString("tokenizer.chat_template").orElse(null);
            return new LlamaModel(modelId(path), config, weights, tokenizer, template, gguf);
        } catch (RuntimeException e) {
            gguf.close();
            throw e;
        }
    }

    /** The model id for a GGUF file: its name without {@code .gguf}. */
    public static String modelId(Path path) {
        String name = path.getFileName().toString();
        return name.endsWith(".gguf") ? name.substring(0, name.length() - 5) : name;
    }

    static ModelConfig readConfig(GgufFile gguf, int maxModelLen) {
        String arch = gguf.getString("general.architecture");
        if (!ARCHITECTURES.contains(arch)) {
            throw new IllegalArgumentException("unsupported general.architecture '" + arch + "' (supported: " + ARCHITECTURES + ")");
        }
        int dim = gguf.getInt(arch + ".embedding_length");
        int numHeads = gguf.getInt(arch + ".attention.head_count");
        int numKvHeads = gguf.getInt(arch + ".attention.head_count_kv", numHeads);
        int headDim = gguf.getInt(arch + ".attention.key_length", dim / numHeads);
        int vocab = (int) gguf.tensor("token_embd.weight").dims()[1];
        int ctx = gguf.getInt(arch + ".context_length");
        RopeStyle style = arch.equals("qwen2") ? RopeStyle.NEOX : RopeStyle.NORMAL;
        return new ModelConfig(arch, dim, gguf.getInt(arch + ".feed_forward_length"), gguf.getInt(arch + ".block_count"),
                numHeads, numKvHeads, headDim, vocab, maxModelLen > 0 ? maxModelLen : ctx,
                gguf.getFloat(arch + ".attention.layer_norm_rms_epsilon", DEFAULT_RMS_EPS),
                gguf.getFloat(arch + ".rope.freq_base", DEFAULT_ROPE_THETA), style,
                gguf.getInt(arch + ".rope.dimension_count", headDim));
    }

    private static LlamaWeights readWeights(GgufFile gguf, ModelConfig c) {
        LayerWeights[] layers = new LayerWeights[c.numLayers()];
        for (int l = 0; l < layers.length; l++) {
            String p = "blk." + l + ".";
            layers[l] = new LayerWeights(
                    vector(gguf, p + "attn_norm.weight", c.dim()),
                    matrix(gguf, p + "attn_q.weight", c.qDim(), c.dim()),
                    matrix(gguf, p + "attn_k.weight", c.kvDim(), c.dim()),
                    matrix(gguf, p + "attn_v.weight", c.kvDim(), c.dim()),
                    optionalVector(gguf, p + "attn_q.bias", c.qDim()),
                    optionalVector(gguf, p + "attn_k.bias", c.kvDim()),
                    optionalVector(gguf, p + "attn_v.bias", c.kvDim()),
                    matrix(gguf, p + "attn_output.weight", c.dim(), c.qDim()),
                    vector(gguf, p + "ffn_norm.weight", c.dim()),
                    matrix(gguf, p + "ffn_gate.weight", c.hiddenDim(), c.dim()),
                    matrix(gguf, p + "ffn_up.weight", c.hiddenDim(), c.dim()),
                    matrix(gguf, p + "ffn_down.weight", c.dim(), c.hiddenDim()));
        }
        WeightMatrix embedding = matrix(gguf, "token_embd.weight", c.vocabSize(), c.dim());
        WeightMatrix output = gguf.findTensor("output.weight").isPresent()
                ? matrix(gguf, "output.weight", c.vocabSize(), c.dim()) : embedding;
        return new LlamaWeights(embedding, layers, vector(gguf, "output_norm.weight", c.dim()), output);
    }

    private static WeightMatrix matrix(GgufFile gguf, String name, int rows, int cols) {
        GgufTensorInfo info = gguf.tensor(name);
        long[] dims = info.dims();
        if (dims.length != 2 || dims[0] != cols || dims[1] != rows) {
            throw new IllegalArgumentException("tensor " + name + " has dims " + java.util.Arrays.toString(dims)
                    + ", expected [" + cols + ", " + rows + "]");
        }
        return WeightMatrix.of(info.type(), gguf.tensorData(info), rows, cols);
    }

    private static float[] vector(GgufFile gguf, String name, int len) {
        GgufTensorInfo info = gguf.tensor(name);
        if (info.numElements() != len) {
            throw new IllegalArgumentException("tensor " + name + " has " + info.numElements() + " elements, expected " + len);
        }
        MemorySegment data = gguf.tensorData(info);
        if (info.type() == GgmlType.F32) {
            return data.toArray(ValueLayout.JAVA_FLOAT_UNALIGNED);
        }
        float[] out = new float[len];
        WeightMatrix.of(info.type(), data, 1, len).dequantizeRow(0, out, 0);
        return out;
    }

    private static float[] optionalVector(GgufFile gguf, String name, int len) {
        Optional<GgufTensorInfo> info = gguf.findTensor(name);
        return info.isPresent() ? vector(gguf, name, len) : null;
    }
}
