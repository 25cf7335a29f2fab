package io.tandem.engine.backend;

/** Which element pairs rotary position embedding (Su et al. 2021, RoFormer) rotates. */
public enum RopeStyle {
    /** Adjacent pairs {@code (x[2i], x[2i+1])}: GGML rope mode 0, llama2.c, GGUF arch {@code llama}. */
    NORMAL,
    /** Halves {@code (x[i], x[i + rotaryDim/2])}: GGML mode 2 (GPT-NeoX), GGUF arch {@code qwen2}. */
    NEOX
}
