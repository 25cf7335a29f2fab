package io.tandem.router;

/**
 * One served model, as {@code GET /v1/models} and gRPC {@code ListModels} list it.
 *
 * @param id          model id: the GGUF file name without {@code .gguf}, or the dummy arch name
 * @param maxModelLen context length in tokens
 * @param created     Unix seconds at which the server loaded it
 * @param ownedBy     OpenAI's {@code owned_by}
 */
public record ModelCard(String id, int maxModelLen, long created, String ownedBy) {}
