package io.tandem.engine.model;

import io.tandem.engine.backend.RopeStyle;

/**
 * Hyper-parameters of a Llama-family model, named as the GGUF keys
 * {@code {arch}.embedding_length}, {@code .feed_forward_length}, {@code .block_count},
 * {@code .attention.head_count}, {@code .attention.head_count_kv},
 * {@code .attention.layer_norm_rms_epsilon}, {@code .rope.freq_base},
 * {@code .rope.dimension_count}, {@code .context_length}.
 *
 * @param architecture  GGUF {@code general.architecture} ({@code llama}, {@code qwen2}, …)
 * @param dim           embedding width
 * @param hiddenDim     feed-forward width
 * @param numLayers     transformer blocks
 * @param numHeads      query heads
 * @param numKvHeads    key/value heads (GQA); divides {@code numHeads}
 * @param headDim       {@code dim / numHeads}
 * @param vocabSize     rows of the token embedding
 * @param contextLength tokens of context (positions) the server allows
 * @param rmsNormEps    RMSNorm epsilon
 * @param ropeTheta     RoPE base frequency
 * @param ropeStyle     which element pairs RoPE rotates
 * @param rotaryDim     leading elements of each head that RoPE rotates
 */
public record ModelConfig(
        String architecture, int dim, int hiddenDim, int numLayers, int numHeads, int numKvHeads, int headDim,
        int vocabSize, int contextLength, float rmsNormEps, float ropeTheta, RopeStyle ropeStyle, int rotaryDim) {

    public ModelConfig {
        if (dim <= 0 || hiddenDim <= 0 || numLayers <= 0 || numHeads <= 0 || numKvHeads <= 0 || vocabSize <= 0) {
            throw new IllegalArgumentException("model dimensions must be positive: " + this);
        }
        if (numHeads % numKvHeads != 0) {
            throw new IllegalArgumentException("head_count " + numHeads + " is not a multiple of head_count_kv " + numKvHeads);
        }
        if (rotaryDim > headDim || rotaryDim % 2 != 0) {
            throw new IllegalArgumentException("rope dimension " + rotaryDim + " must be even and <= head dim " + headDim);
        }
    }

    /** Width of the concatenated query heads. */
    public int qDim() {
        return numHeads * headDim;
    }

    /** Width of the concatenated key (or value) heads. */
    public int kvDim() {
        return numKvHeads * headDim;
    }

    /** Same model with another context length (e.g. {@code --max-model-len}). */
    public ModelConfig withContextLength(int tokens) {
        return new ModelConfig(architecture, dim, hiddenDim, numLayers, numHeads, numKvHeads, headDim, vocabSize,
                tokens, rmsNormEps, ropeTheta, ropeStyle, rotaryDim);
    }

    /** Approximate parameter count (weights of matrices and embeddings). */
    public long parameterCount() {
        long perLayer = (long) dim * qDim() + 2L * dim * kvDim() + (long) qDim() * dim + 3L * dim * hiddenDim;
        return perLayer * numLayers + 2L * vocabSize * dim;
    }
}
