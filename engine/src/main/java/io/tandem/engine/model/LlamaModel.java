package io.tandem.engine.model;

import io.tandem.engine.tokenizer.Tokenizer;

/**
 * A loaded model: hyper-parameters, weights, tokenizer and chat template, and the memory behind
 * the weights (a memory-mapped GGUF file or an arena of dummy weights), which {@link #close()}
 * releases (idempotent).
 *
 * @param id           model id served to clients (GGUF file name without {@code .gguf}, or the
 *                     dummy architecture name)
 * @param config       hyper-parameters
 * @param weights      weights
 * @param tokenizer    tokenizer
 * @param chatTemplate GGUF {@code tokenizer.chat_template} (Jinja source) or {@code null}
 * @param memory       owner of the weights' memory
 */
public record LlamaModel(String id, ModelConfig config, LlamaWeights weights, Tokenizer tokenizer,
                         String chatTemplate, AutoCloseable memory) implements AutoCloseable {

    @Override
    public void close() {
        try {
            memory.close();
        } catch (Exception e) {
            throw new IllegalStateException("closing model " + id, e);
        }
    }
}
