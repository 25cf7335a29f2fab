package io.tandem.router.template;

import io.tandem.engine.InvalidArgumentException;
import io.tandem.router.ChatTemplate;
import java.util.List;
import java.util.Objects;

/**
 * Zephyr ({@code HuggingFaceH4/zephyr-7b-beta}, TinyLlama-1.1B-Chat): every turn is
 * {@code <|role|>\n content EOS \n}, and the generation prompt is {@code <|assistant|>\n}:
 *
 * <pre>
 * &lt;|system|&gt;
 * Be brief.&lt;/s&gt;
 * &lt;|user|&gt;
 * Hi&lt;/s&gt;
 * &lt;|assistant|&gt;
 * </pre>
 *
 * The newlines after each turn come from the template text itself (Hugging Face renders with
 * {@code trim_blocks}, which removes the newline after a block tag but not after an expression).
 *
 * @param eosText EOS token text ({@code </s>})
 */
public record ZephyrTemplate(String eosText) implements ChatTemplate {

    public ZephyrTemplate {
        Objects.requireNonNull(eosText, "eosText");
    }

    /**
     * @throws InvalidArgumentException ({@code messages}) for a role other than system, user or
     *         assistant, which the template would silently drop
     */
    @Override
    public String render(List<Message> messages, boolean addGenerationPrompt) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < messages.size(); i++) {
            Message message = messages.get(i);
            String role = message.role();
            if (!role.equals("system") && !role.equals("user") && !role.equals("assistant")) {
                throw new InvalidArgumentException("messages[" + i + "].role",
                        "this model's chat template supports system, user and assistant roles, got '" + role + "'");
            }
            out.append("<|").append(role).append("|>\n").append(message.content()).append(eosText).append('\n');
        }
        // {% if loop.last and add_generation_prompt %} sits inside the loop: no messages, no prompt.
        if (addGenerationPrompt && !messages.isEmpty()) {
            out.append("<|assistant|>\n");
        }
        return out.toString();
    }

    @Override
    public boolean includesBos() {
        return false;
    }
}
