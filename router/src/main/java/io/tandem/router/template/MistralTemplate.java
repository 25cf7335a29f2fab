package io.tandem.router.template;

import io.tandem.engine.InvalidArgumentException;
import io.tandem.router.ChatTemplate;
import java.util.List;
import java.util.Objects;

/**
 * Mistral / Mixtral Instruct ({@code mistralai/Mistral-7B-Instruct-v0.1 … v0.3}): BOS once, user
 * turns in {@code [INST] … [/INST]}, answers closed by EOS, no generation prompt.
 *
 * <pre>
 * V1 (v0.1):          &lt;s&gt;[INST] Hi [/INST]Hello!&lt;/s&gt; [INST] Bye [/INST]
 * V2 (v0.2, Mixtral): &lt;s&gt;[INST] Hi [/INST]Hello!&lt;/s&gt;[INST] Bye [/INST]
 * V3 (v0.3):          &lt;s&gt;[INST] Hi[/INST] Hello!&lt;/s&gt;[INST] Be brief.\n\nBye[/INST]
 * </pre>
 *
 * V1 and V2 support user and assistant roles only; V3 takes an optional leading system message and
 * renders it before the last message when that is a user turn (and drops it otherwise, as the
 * template does), and trims answers.
 *
 * @param bosText BOS token text ({@code <s>})
 * @param eosText EOS token text ({@code </s>})
 * @param variant template version
 */
public record MistralTemplate(String bosText, String eosText, Variant variant) implements ChatTemplate {

    public MistralTemplate {
        Objects.requireNonNull(bosText, "bosText");
        Objects.requireNonNull(eosText, "eosText");
        Objects.requireNonNull(variant, "variant");
    }

    /** Template version, told apart by markers in the Jinja source (see {@link ChatTemplates}). */
    public enum Variant {
        /** {@code message['content'] + eos_token + ' '}. */
        V1,
        /** {@code message['content'] + eos_token}. */
        V2,
        /** The tool-aware template with {@code [AVAILABLE_TOOLS]}. */
        V3
    }

    /**
     * @throws InvalidArgumentException ({@code messages}) for a role the template rejects or roles
     *         that do not alternate user/assistant starting with user
     */
    @Override
    public String render(List<Message> messages, boolean addGenerationPrompt) {
        String systemMessage = null;
        List<Message> turns = messages;
        if (variant == Variant.V3 && !messages.isEmpty() && "system".equals(messages.getFirst().role())) {
            systemMessage = messages.getFirst().content();
            turns = messages.subList(1, messages.size());
        }
        StringBuilder out = new StringBuilder(bosText);
        for (int i = 0; i < turns.size(); i++) {
            Message message = turns.get(i);
            ChatTemplates.requireAlternatingRoles(message, i);
            boolean user = "user".equals(message.role());
            switch (variant) {
                case V1, V2 -> {
                    if (user) {
                        out.append("[INST] ").append(message.content()).append(" [/INST]");
                    } else {
                        out.append(message.content()).append(eosText).append(variant == Variant.V1 ? " " : "");
                    }
                }
                case V3 -> {
                    if (user) {
                        boolean last = i == turns.size() - 1;
                        out.append("[INST] ");
                        if (last && systemMessage != null) {
                            out.append(systemMessage).append("\n\n");
                        }
                        out.append(message.content()).append("[/INST]");
                    } else {
                        out.append(' ').append(ChatTemplates.pythonStrip(message.content())).append(eosText);
                    }
                }
            }
        }
        return out.toString();
    }

    @Override
    public boolean includesBos() {
        return !bosText.isEmpty();
    }
}
