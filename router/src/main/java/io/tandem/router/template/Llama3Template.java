package io.tandem.router.template;

import io.tandem.router.ChatTemplate;
import java.util.List;
import java.util.function.Supplier;

/**
 * The Llama 3 family's header format (Meta's {@code tokenizer_config.json} templates):
 *
 * <pre>
 * &lt;|begin_of_text|&gt;&lt;|start_header_id|&gt;user&lt;|end_header_id|&gt;
 *
 * Hello&lt;|eot_id|&gt;&lt;|start_header_id|&gt;assistant&lt;|end_header_id|&gt;
 *
 * </pre>
 *
 * Every message's content is trimmed (Jinja {@code | trim}). Llama 3.1, 3.2 and 3.3 always open with
 * a system turn that states the knowledge cut-off and a date, followed by the trimmed system message
 * if the conversation starts with one; tool results are sent under the {@code ipython} role.
 *
 * @param bosText    BOS token text rendered first ({@code <|begin_of_text|>}); {@code null} or empty for none
 * @param dateString the "Today Date" of the 3.1+ system turn ({@code "26 Jul 2024"}, or today's date
 *                   for templates that call {@code strftime_now}); {@code null} for Llama 3.0, which
 *                   has no such turn
 */
public record Llama3Template(String bosText, Supplier<String> dateString) implements ChatTemplate {

    private static final String GENERATION_PROMPT = "<|start_header_id|>assistant<|end_header_id|>\n\n";

    @Override
    public String render(List<Message> messages, boolean addGenerationPrompt) {
        StringBuilder out = new StringBuilder();
        List<Message> turns = messages;
        if (dateString != null) {
            out.append(bosOrEmpty());
            String systemMessage = "";
            if (!messages.isEmpty() && "system".equals(messages.getFirst().role())) {
                systemMessage = ChatTemplates.pythonStrip(messages.getFirst().content());
                turns = messages.subList(1, messages.size());
            }
            out.append("<|start_header_id|>system<|end_header_id|>\n\n")
                    .append("Cutting Knowledge Date: December 2023\n")
                    .append("Today Date: ").append(dateString.get()).append("\n\n")
                    .append(systemMessage)
                    .append("<|eot_id|>");
        } else if (!messages.isEmpty()) {
            // Llama 3.0 prepends BOS to the first message only: {% if loop.index0 == 0 %}.
            out.append(bosOrEmpty());
        }
        for (Message message : turns) {
            boolean toolResult = dateString != null
                    && ("tool".equals(message.role()) || "ipython".equals(message.role()));
            if (toolResult) {
                out.append("<|start_header_id|>ipython<|end_header_id|>\n\n").append(message.content()).append("<|eot_id|>");
            } else {
                out.append("<|start_header_id|>").append(message.role()).append("<|end_header_id|>\n\n")
                        .append(ChatTemplates.pythonStrip(message.content()))
                        .append("<|eot_id|>");
            }
        }
        if (addGenerationPrompt) {
            out.append(GENERATION_PROMPT);
        }
        return out.toString();
    }

    private String bosOrEmpty() {
        return bosText == null ? "" : bosText;
    }

    @Override
    public boolean includesBos() {
        return bosText != null && !bosText.isEmpty();
    }
}
