package io.tandem.router;

import java.util.List;

/**
 * Turns chat messages into the prompt text a model was trained on.
 */
public interface ChatTemplate {
    /** One chat message; {@code role} is system, user, assistant (or tool). */
    record Message(String role, String content) {}

    /**
     * Renders {@code messages} (and, with {@code addGenerationPrompt}, the opening of the
     * assistant's turn) as prompt text. Special tokens in the result (e.g. {@code <|im_start|>})
     * are meant to be tokenized as special tokens.
     */
    String render(List<Message> messages, boolean addGenerationPrompt);

    /** Whether the rendered text already starts with the BOS token text, so the router must not add BOS again. */
    boolean includesBos();
}
