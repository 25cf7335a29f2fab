package io.tandem.engine.model;

import io.tandem.engine.gguf.GgufWriter;
import io.tandem.engine.tensor.GgmlType;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.SplittableRandom;

/**
 * Random-weight models at a real architecture's shape ({@code --load-format dummy}, as vLLM's
 * dummy load format), written as GGUF so llama.cpp can run the very same weights
 * ({@code tandem export-dummy}).
 *
 * <p>A dummy model is a pure function of (architecture, weight type, seed): matrices hold
 * uniformly random quantized values of standard deviation about 0.02 (Q8_0: scale
 * {@code 0.02/73.3}, int8 uniform in [-127, 127]), norm weights are 1. The tokenizer is a
 * synthetic SentencePiece ({@code llama}) vocabulary of the architecture's size: unk, BOS, EOS,
 * the 256 byte tokens, then word-like pieces. {@link #load} writes the file once into a cache
 * folder ({@code $TANDEM_CACHE}, else {@code ~/.cache/tandem}) and memory-maps it.
 */
public final class DummyModels {
    /** Context length of dummy models unless {@code --max-model-len} says otherwise. */
    public static final int DEFAULT_CONTEXT_LENGTH = 4096;
    private static final float WEIGHT_STD = 0.02f;
    private static final int CHUNK_BLOCKS = 4096;

    private DummyModels() {}

    /** The cache file a dummy model is kept in. */
    public static Path cachedFile(DummyArchitecture arch, GgmlType type, long seed) {
        String cache = System.getenv("TANDEM_CACHE");
        Path dir = cache != null && !cache.isEmpty() ? Path.of(cache) : Path.of(System.getProperty("user.home"), ".cache", "tandem");
        return dir.resolve("dummy").resolve(arch.archName() + "-" + type.name().toLowerCase() + "-seed" + seed + ".gguf");
    }

    /**
     * Loads (writing first if not cached) a dummy model.
     *
     * @param contextLength context length to serve
     */
    public static LlamaModel load(DummyArchitecture arch, GgmlType type, long seed, int contextLength) throws IOException {
        Path file = cachedFile(arch, type, seed);
        if (!Files.isRegularFile(file)) {
            Files.createDirectories(file.getParent());
            Path tmp = Files.createTempFile(file.getParent(), file.getFileName().toString(), ".tmp");
            try {
                write(arch, type, seed, tmp);
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } finally {
                Files.deleteIfExists(tmp);
            }
        }
        LlamaModel m = GgufModelLoader.load(file, contextLength);
        return new LlamaModel(arch.archName(), m.config(), m.weights(), m.tokenizer(), m.chatTemplate(), m);
    }

    /**
     * Writes a dummy model as a GGUF v3 file llama.cpp loads ({@code general.architecture = llama}).
     *
     * @throws IllegalArgumentException if {@code type} cannot hold the architecture's rows
     */
    public static void write(DummyArchitecture arch, GgmlType type, long seed, Path out) throws IOException {
        ModelConfig c = arch.config(DEFAULT_CONTEXT_LENGTH);
        GgufWriter w = new GgufWriter();
        w.putString("general.architecture", "llama");
        w.putString("general.name", "tandem-dummy-" + arch.archName());
        w.putUint32("general.file_type", fileType(type));
        w.putUint32("llama.context_length", c.contextLength());
        w.putUint32("llama.embedding_length", c.dim());
        w.putUint32("llama.feed_forward_length", c.hiddenDim());
        w.putUint32("llama.block_count", c.numLayers());
        w.putUint32("llama.attention.head_count", c.numHeads());
        w.putUint32("llama.attention.head_count_kv", c.numKvHeads());
        w.putFloat32("llama.attention.layer_norm_rms_epsilon", c.rmsNormEps());
        w.putFloat32("llama.rope.freq_base", c.ropeTheta());
        w.putUint32("llama.rope.dimension_count", c.rotaryDim());
        w.putUint32("llama.vocab_size", c.vocabSize());
        SyntheticVocabulary.put(w, c.vocabSize());
        long[] stream = {seed};
        addMatrix(w, "token_embd.weight", type, c.vocabSize(), c.dim(), stream);
        addOnes(w, "output_norm.weight", c.dim());
        if (!arch.tiedEmbeddings()) {
            addMatrix(w, "output.weight", type, c.vocabSize(), c.dim(), stream);
        }
        for (int l = 0; l < c.numLayers(); l++) {
            String p = "blk." + l + ".";
            addOnes(w, p + "attn_norm.weight", c.dim());
            addMatrix(w, p + "attn_q.weight", type, c.qDim(), c.dim(), stream);
            addMatrix(w, p + "attn_k.weight", type, c.kvDim(), c.dim(), stream);
            addMatrix(w, p + "attn_v.weight", type, c.kvDim(), c.dim(), stream);
            addMatrix(w, p + "attn_output.weight", type, c.dim(), c.qDim(), stream);
            addOnes(w, p + "ffn_norm.weight", c.dim());
            addMatrix(w, p + "ffn_gate.weight", type, c.hiddenDim(), c.dim(), stream);
            addMatrix(w, p + "ffn_up.weight", type, c.hiddenDim(), c.dim(), stream);
            addMatrix(w, p + "ffn_down.weight", type, c.dim(), c.hiddenDim(), stream);
        }
        w.write(out);
    }

    /** {@code general.file_type} ({@code enum llama_ftype}) of an all-{@code type} model. */
    private static int fileType(GgmlType type) {
        return switch (type) {
            case F32 -> 0;
            case F16 -> 1;
            case Q4_0 -> 2;
            case Q8_0 -> 7;
            case BF16 -> 32;
        };
    }

    private static void addOnes(GgufWriter w, String name, int len) {
        w.addTensor(name, GgmlType.F32, new long[] {len}, out -> {
            byte[] one = {0, 0, (byte) 0x80, 0x3f}; // 1.0f little-endian
            for (int i = 0; i < len; i++) {
                out.write(one);
            }
        });
    }

    /** A random {@code [rows, cols]} matrix; each tensor gets its own stream split off the seed. */
    private static void addMatrix(GgufWriter w, String name, GgmlType type, int rows, int cols, long[] stream) {
        long tensorSeed = stream[0]++;
        long elements = (long) rows * cols;
        w.addTensor(name, type, new long[] {cols, rows}, out -> writeRandom(out, type, elements,
                new SplittableRandom(tensorSeed * 0x9E3779B97F4A7C15L + name.hashCode())));
    }

    private static void writeRandom(OutputStream out, GgmlType type, long elements, SplittableRandom rnd) throws IOException {
        long blocks = elements / type.blockSize();
        byte[] buf = new byte[CHUNK_BLOCKS * type.typeSize()];
        for (long done = 0; done < blocks; ) {
            int n = (int) Math.min(CHUNK_BLOCKS, blocks - done);
            for (int b = 0; b < n; b++) {
                fillBlock(buf, b * type.typeSize(), type, rnd);
            }
            out.write(buf, 0, n * type.typeSize());
            done += n;
        }
    }

    private static void fillBlock(byte[] buf, int at, GgmlType type, SplittableRandom rnd) {
        switch (type) {
            case Q8_0 -> {
                putShort(buf, at, Float.floatToFloat16(WEIGHT_STD / 73.3f));
                for (int i = 0; i < 32; i++) {
                    buf[at + 2 + i] = (byte) (rnd.nextInt(255) - 127);
                }
            }
            case Q4_0 -> {
                // nibble - 8 is uniform in [-8, 7]: standard deviation about 4.6
                putShort(buf, at, Float.floatToFloat16(WEIGHT_STD / 4.6f));
                for (int i = 0; i < 16; i++) {
                    buf[at + 2 + i] = (byte) rnd.nextInt(256);
                }
            }
            case F32 -> {
                int bits = Float.floatToRawIntBits(uniform(rnd));
                buf[at] = (byte) bits;
                buf[at + 1] = (byte) (bits >>> 8);
                buf[at + 2] = (byte) (bits >>> 16);
                buf[at + 3] = (byte) (bits >>> 24);
            }
            case F16 -> putShort(buf, at, Float.floatToFloat16(uniform(rnd)));
            case BF16 -> putShort(buf, at, (short) (Float.floatToRawIntBits(uniform(rnd)) >>> 16));
        }
    }

    /** Uniform in [-a, a] with standard deviation {@link #WEIGHT_STD} (a = std·√3). */
    private static float uniform(SplittableRandom rnd) {
        return (float) ((rnd.nextDouble() * 2 - 1) * WEIGHT_STD * Math.sqrt(3));
    }

    private static void putShort(byte[] buf, int at, short v) {
        buf[at] = (byte) v;
        buf[at + 1] = (byte) (v >>> 8);
    }
}
