package io.tandem.engine.backend;

/**
 * Which elements of a head RoPE rotates together; {@code rotaryDim} is the rotated prefix of the
 * head ({@code n_dims} in ggml, usually the whole head), later elements are left as they are.
 * Pair {@code i in [0, rotaryDim/2)} is rotated by angle {@code pos * theta^(-2i/rotaryDim)}.
 */
public enum RopeStyle {
    /**
     * Adjacent pairs {@code (x[2i], x[2i+1])}: GGML rope mode 0, llama2.c, GGUF architecture
     * {@code llama} (its converter permutes Q/K weights into this order).
     */
    NORMAL,
    /**
     * Split halves {@code (x[i], x[i + rotaryDim/2])}: GGML rope mode 2 ({@code GGML_ROPE_TYPE_NEOX}),
     * GPT-NeoX, Hugging Face {@code rotate_half}, GGUF architectures {@code qwen2}, {@code phi3}, ...
     */
    NEOX
}
