package io.tandem.engine.model;

import io.tandem.engine.tensor.WeightMatrix;

/**
 * Weights of one transformer block (GGUF names {@code blk.N.*}). Matrices are {@code [out, in]}.
 *
 * @param attnNorm   {@code attn_norm.weight} {@code [dim]}
 * @param wq         {@code attn_q.weight} {@code [qDim, dim]}
 * @param wk         {@code attn_k.weight} {@code [kvDim, dim]}
 * @param wv         {@code attn_v.weight} {@code [kvDim, dim]}
 * @param bq         {@code attn_q.bias} {@code [qDim]} or {@code null} (Qwen2 has QKV bias)
 * @param bk         {@code attn_k.bias} or {@code null}
 * @param bv         {@code attn_v.bias} or {@code null}
 * @param wo         {@code attn_output.weight} {@code [dim, qDim]}
 * @param ffnNorm    {@code ffn_norm.weight} {@code [dim]}
 * @param wGate      {@code ffn_gate.weight} {@code [hiddenDim, dim]}
 * @param wUp        {@code ffn_up.weight} {@code [hiddenDim, dim]}
 * @param wDown      {@code ffn_down.weight} {@code [dim, hiddenDim]}
 */
public record LayerWeights(
        float[] attnNorm, WeightMatrix wq, WeightMatrix wk, WeightMatrix wv, float[] bq, float[] bk, float[] bv,
        WeightMatrix wo, float[] ffnNorm, WeightMatrix wGate, WeightMatrix wUp, WeightMatrix wDown) {}
