package io.tandem.engine.model;

import io.tandem.engine.tensor.WeightMatrix;

/**
 * All weights of a Llama-family model.
 *
 * @param tokenEmbedding {@code token_embd.weight} {@code [vocab, dim]}
 * @param layers         one per block
 * @param outputNorm     {@code output_norm.weight} {@code [dim]}
 * @param output         {@code output.weight} {@code [vocab, dim]}, or the token embedding when tied
 */
public record LlamaWeights(WeightMatrix tokenEmbedding, LayerWeights[] layers, float[] outputNorm, WeightMatrix output) {}
