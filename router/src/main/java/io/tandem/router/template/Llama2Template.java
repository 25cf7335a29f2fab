package io.tandem.router.template;

import io.tandem.engine.InvalidArgumentException;
import io.tandem.router.ChatTemplate;
import java.util.List;
import java.util.Objects;

/**
 * Llama 2 chat ({@code meta-llama/Llama-2-*-chat-hf}): each user turn is wrapped in
 * {@code <s>[INST] ... [/INST]}, each answer followed by {@code  </s>}, and a leading system
 * message is folded into the first user turn inside {@code <<SYS>>} markers:
 *
 * <pre>
 * &lt;s&gt;[INST] &lt;&lt;SYS&gt;&gt;
 * Be brief.
 * &lt;&lt;/SYS&gt;&gt;
 *
 * Hi [/INST] Hello! &lt;/s&gt;&lt;s&gt;[INST] Bye [/INST]
 * </pre>
 *
 * The whole turn content (system block included) is stripped, as the template's
 * {@code content.strip()} does. The template has no generation prompt: {@code [/INST]} is where
 * the answer starts, so {@code addGenerationPrompt} changes nothing.
 *
 * @param bosText BOS token text opening every user turn ({@code <s>})
 * @param eosText EOS token text closing every answer ({@code </s>})
 */
public record Llama2Template(String bosText, String eosText) implements ChatTemplate {

    public Llama2Template {
        Objects.requireNonNull(bosText, "bosText");
        Objects.requireNonNull(eosText, "eosText");
    }

    /**
     * @throws InvalidArgumentException ({@code messages}) when, after an optional leading system
     *         message, roles do not alternate user/assistant starting with user (the template's
     *         {@code raise_exception})
     */
    @Override
    public String render(List<Message> messages, boolean addGenerationPrompt) {
        String systemMessage = null;
        List<Message> turns = messages;
        if (!messages.isEmpty() && "system".equals(messages.getFirst().role())) {
            systemMessage = messages.getFirst().content();
            turns = messages.subList(1, messages.size());
        }
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < turns.size(); i++) {
            Message message = turns.get(i);
            ChatTemplates.requireAlternatingRoles(message, i);
            String content = message.content();
            if (i == 0 && systemMessage != null) {
                content = "<<SYS>>\n" + systemMessage + "\n<</SYS>>\n\n" + content;
            }
            if ("user".equals(message.role())) {
                out.append(bosText).append("[INST] ").append(ChatTemplates.pythonStrip(content)).append(" [/INST]");
            } else {
                out.append(' ').append(ChatTemplates.pythonStrip(content)).append(' ').append(eosText);
            }
        }
        return out.toString();
    }

    @Override
    public boolean includesBos() {
        return !bosText.isEmpty();
    }
}
