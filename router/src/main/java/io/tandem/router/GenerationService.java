package io.tandem.router;

import java.util.List;

/**
 * What the public front ends (OpenAI HTTP, gRPC {@code tandem.v1.Generation}) need from the
 * router: the models served, their chat templates, and streaming generation.
 */
public interface GenerationService {
    /** The models served, in a stable order. */
    List<ModelCard> listModels();

    /**
     * The chat template of a model.
     *
     * @throws ModelNotFoundException if {@code model} is not served ({@code null}/empty = the only model)
     */
    ChatTemplate chatTemplate(String model);

    /**
     * Validates and admits a request, then streams its output to {@code listener}.
     *
     * @throws io.tandem.engine.InvalidArgumentException naming the field (e.g. {@code max_tokens}
     *         beyond the context, a prompt longer than the context, a token id out of range)
     * @throws ModelNotFoundException if the model is not served
     * @throws OverloadedException    if the admission queue is full
     */
    GenerationStream generate(CompletionRequest request, GenerationListener listener);
}
