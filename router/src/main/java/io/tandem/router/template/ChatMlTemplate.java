package io.tandem.router.template;

import io.tandem.router.ChatTemplate;
import java.util.List;

/**
 * ChatML, the format of Qwen2, SmolLM2 and llama.cpp's fallback:
 *
 * <pre>
 * &lt;|im_start|&gt;system
 * You are a helpful assistant.&lt;|im_end|&gt;
 * &lt;|im_start|&gt;user
 * Hello&lt;|im_end|&gt;
 * &lt;|im_start|&gt;assistant
 * </pre>
 *
 * Qwen2 and SmolLM2 templates open with a default system turn when the first message is not a
 * system message ({@code {% if loop.first and messages[0]['role'] != 'system' %}}); llama.cpp's
 * built-in ChatML has none.
 *
 * @param defaultSystemPrompt system turn rendered when the conversation has none; {@code null} for none
 */
public record ChatMlTemplate(String defaultSystemPrompt) implements ChatTemplate {

    @Override
    public String render(List<Message> messages, boolean addGenerationPrompt) {
        StringBuilder out = new StringBuilder();
        boolean startsWithSystem = !messages.isEmpty() && "system".equals(messages.getFirst().role());
        if (defaultSystemPrompt != null && !messages.isEmpty() && !startsWithSystem) {
            turn(out, "system", defaultSystemPrompt);
        }
        for (Message message : messages) {
            turn(out, message.role(), message.content());
        }
        if (addGenerationPrompt) {
            out.append("<|im_start|>assistant\n");
        }
        return out.toString();
    }

    private static void turn(StringBuilder out, String role, String content) {
        out.append("<|im_start|>").append(role).append('\n').append(content).append("<|im_end|>\n");
    }

    @Override
    public boolean includesBos() {
        return false;
    }
}
