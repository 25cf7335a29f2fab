package io.tandem.engine.model;

import io.tandem.engine.backend.RopeStyle;
import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * Model shapes for {@code --load-format dummy} (random weights at a real model's shape, as vLLM's
 * dummy load format does). Hyper-parameters are those of the models' published {@code config.json}.
 */
public enum DummyArchitecture {
    /** Meta Llama 3.2 1B: 16 layers, d=2048, GQA 32/8, FFN 8192, vocab 128256, tied embeddings. */
    LLAMA_3_2_1B("llama-3.2-1b", 2048, 8192, 16, 32, 8, 128256, 500_000f, true),
    /** Meta Llama 3 8B: 32 layers, d=4096, GQA 32/8, FFN 14336, vocab 128256. */
    LLAMA_3_8B("llama-3-8b", 4096, 14336, 32, 32, 8, 128256, 500_000f, false),
    /** A tiny shape for tests: 2 layers, d=64, GQA 4/2, FFN 128, vocab 512. */
    TINY("tiny", 64, 128, 2, 4, 2, 512, 10_000f, false);

    private final String archName;
    final int dim;
    final int hiddenDim;
    final int numLayers;
    final int numHeads;
    final int numKvHeads;
    final int vocabSize;
    final float ropeTheta;
    final boolean tiedEmbeddings;

    DummyArchitecture(String archName, int dim, int hiddenDim, int numLayers, int numHeads, int numKvHeads,
                      int vocabSize, float ropeTheta, boolean tiedEmbeddings) {
        this.archName = archName;
        this.dim = dim;
        this.hiddenDim = hiddenDim;
        this.numLayers = numLayers;
        this.numHeads = numHeads;
        this.numKvHeads = numKvHeads;
        this.vocabSize = vocabSize;
        this.ropeTheta = ropeTheta;
        this.tiedEmbeddings = tiedEmbeddings;
    }

    /** The name used on the command line ({@code --arch llama-3.2-1b}). */
    public String archName() {
        return archName;
    }

    /** Whether the output projection shares the token embedding. */
    public boolean tiedEmbeddings() {
        return tiedEmbeddings;
    }

    /** Hyper-parameters with the given context length. */
    public ModelConfig config(int contextLength) {
        return new ModelConfig("llama", dim, hiddenDim, numLayers, numHeads, numKvHeads, dim / numHeads, vocabSize,
                contextLength, 1e-5f, ropeTheta, RopeStyle.NORMAL, dim / numHeads);
    }

    /**
     * The architecture named {@code name}.
     *
     * @throws IllegalArgumentException listing the known names
     */
    public static DummyArchitecture byName(String name) {
        for (DummyArchitecture a : values()) {
            if (a.archName.equalsIgnoreCase(name)) {
                return a;
            }
        }
        throw new IllegalArgumentException("unknown --arch '" + name + "' (known: "
                + Arrays.stream(values()).map(DummyArchitecture::archName).collect(Collectors.joining(", ")) + ")");
    }
}
