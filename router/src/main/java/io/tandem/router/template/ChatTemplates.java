package io.tandem.router.template;

import io.tandem.engine.InvalidArgumentException;
import io.tandem.router.ChatTemplate;
import java.time.Clock;
import java.time.LocalDate;
import java.time.format.DateTimeFormatter;
import java.util.Locale;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Picks the {@link ChatTemplate} of a model from its GGUF {@code tokenizer.chat_template} (a Jinja
 * string) by markers that identify the family, the way llama.cpp's {@code llm_chat_detect_template}
 * does (src/llama-chat.cpp). This is not a Jinja engine: each family is rendered by hand-written
 * code that reproduces the real template's output byte for byte.
 *
 * <table>
 * <caption>Detection, first match wins</caption>
 * <tr><th>marker in the template</th><th>template</th></tr>
 * <tr><td>none (no template)</td><td>ChatML without system prompt: llama.cpp's server uses its
 *     built-in ChatML template ({@code CHATML_TEMPLATE_SRC} in common/chat.cpp) when the GGUF has
 *     no {@code tokenizer.chat_template}</td></tr>
 * <tr><td>{@code <|im_start|>}</td><td>ChatML, with the default system prompt the template opens
 *     with when the first message is not a system message (Qwen2, SmolLM2)</td></tr>
 * <tr><td>{@code [INST]} and {@code <<SYS>>}</td><td>Llama 2 chat</td></tr>
 * <tr><td>{@code [INST]} and {@code [AVAILABLE_TOOLS]}</td><td>Mistral v0.3</td></tr>
 * <tr><td>{@code [INST]} and {@code eos_token + ' '}</td><td>Mistral v0.1</td></tr>
 * <tr><td>{@code [INST]}</td><td>Mistral v0.2 / Mixtral</td></tr>
 * <tr><td>{@code <|start_header_id|>}</td><td>Llama 3; with {@code Cutting Knowledge Date} the
 *     3.1+ dated system turn</td></tr>
 * <tr><td>{@code <|user|>} and {@code <|assistant|>}</td><td>Zephyr (TinyLlama chat)</td></tr>
 * <tr><td>anything else</td><td>ChatML, logged as a warning (llama.cpp's server also falls back to
 *     ChatML for a template it cannot apply, ggml-org/llama.cpp#5628)</td></tr>
 * </table>
 */
public final class ChatTemplates {

    private static final Logger LOG = LoggerFactory.getLogger(ChatTemplates.class);

    /** EOS text of SentencePiece Llama vocabularies, used when the caller does not give one. */
    public static final String DEFAULT_EOS_TEXT = "</s>";
    /** The date Meta's Llama 3.1 template uses when the caller defines no {@code date_string}. */
    static final String LLAMA31_DEFAULT_DATE = "26 Jul 2024";

    /**
     * A whole system turn inside one Jinja string literal, {@code '<|im_start|>system\n<text><|im_end|>},
     * either quote, {@code \n} escaped or literal. A turn built from {@code messages[0]['content']}
     * closes the literal after {@code system\n} and does not match.
     */
    private static final Pattern CHATML_DEFAULT_SYSTEM = Pattern.compile(
            "(['\"])<\\|im_start\\|>system(?:\\\\n|\\n)((?:(?!\\1)[^\\\\]|\\\\.)*?)<\\|im_end\\|>");
    private static final Pattern LLAMA3_DATE_STRING = Pattern.compile("set date_string = \"([^\"]*)\"");
    private static final DateTimeFormatter STRFTIME_D_B_Y = DateTimeFormatter.ofPattern("dd MMM yyyy", Locale.ENGLISH);

    private ChatTemplates() {}

    /**
     * The template for a GGUF {@code tokenizer.chat_template}, with {@code </s>} as EOS text and
     * today's date (system clock) for templates that call {@code strftime_now}.
     *
     * @param jinjaOrNull the GGUF {@code tokenizer.chat_template}; {@code null} or blank when absent
     * @param bosText     the text of the model's BOS token (e.g. {@code <|begin_of_text|>}, {@code <s>});
     *                    {@code null} when the model has none
     */
    public static ChatTemplate forTemplate(String jinjaOrNull, String bosText) {
        return forTemplate(jinjaOrNull, bosText, DEFAULT_EOS_TEXT, Clock.systemDefaultZone());
    }

    /**
     * The template for a GGUF {@code tokenizer.chat_template}.
     *
     * @param jinjaOrNull the GGUF {@code tokenizer.chat_template}; {@code null} or blank when absent
     * @param bosText     the text of the model's BOS token; {@code null} when the model has none
     * @param eosText     the text of the model's EOS token (closes answers in Llama 2, Mistral, Zephyr)
     * @param clock       today's date for Llama 3.2's {@code strftime_now("%d %b %Y")}
     */
    public static ChatTemplate forTemplate(String jinjaOrNull, String bosText, String eosText, Clock clock) {
        String bos = bosText == null ? "" : bosText;
        String eos = eosText == null ? "" : eosText;
        if (jinjaOrNull == null || jinjaOrNull.isBlank()) {
            return new ChatMlTemplate(null);
        }
        String t = jinjaOrNull;
        if (t.contains("<|im_start|>")) {
            return new ChatMlTemplate(defaultSystemPrompt(t));
        }
        if (t.contains("[INST]")) {
            if (t.contains("<<SYS>>")) {
                return new Llama2Template(bos, eos);
            }
            if (t.contains("[AVAILABLE_TOOLS]")) {
                return new MistralTemplate(bos, eos, MistralTemplate.Variant.V3);
            }
            return new MistralTemplate(bos, eos,
                    t.contains("eos_token + ' '") ? MistralTemplate.Variant.V1 : MistralTemplate.Variant.V2);
        }
        if (t.contains("<|start_header_id|>")) {
            return new Llama3Template(bosText, t.contains("Cutting Knowledge Date") ? llama3Date(t, clock) : null);
        }
        if (t.contains("<|user|>") && t.contains("<|assistant|>")) {
            return new ZephyrTemplate(eos);
        }
        LOG.warn("chat template not recognised, falling back to ChatML; answers may be poor: {}",
                t.length() > 120 ? t.substring(0, 120) + "…" : t);
        return new ChatMlTemplate(null);
    }

    /** The system prompt a ChatML template renders when the conversation has none, or {@code null}. */
    static String defaultSystemPrompt(String jinja) {
        Matcher m = CHATML_DEFAULT_SYSTEM.matcher(jinja);
        return m.find() ? unescapeJinjaLiteral(m.group(2)) : null;
    }

    private static Supplier<String> llama3Date(String jinja, Clock clock) {
        if (jinja.contains("strftime_now")) {
            return () -> LocalDate.now(clock).format(STRFTIME_D_B_Y);
        }
        Matcher m = LLAMA3_DATE_STRING.matcher(jinja);
        String date = m.find() ? m.group(1) : LLAMA31_DEFAULT_DATE;
        return () -> date;
    }

    /** Undoes Python string-literal escapes ({@code \n}, {@code \t}, {@code \'}, {@code \"}, {@code \\}). */
    static String unescapeJinjaLiteral(String literal) {
        StringBuilder out = new StringBuilder(literal.length());
        for (int i = 0; i < literal.length(); i++) {
            char c = literal.charAt(i);
            if (c != '\\' || i + 1 == literal.length()) {
                out.append(c);
                continue;
            }
            char next = literal.charAt(++i);
            switch (next) {
                case 'n' -> out.append('\n');
                case 't' -> out.append('\t');
                case 'r' -> out.append('\r');
                default -> out.append(next);
            }
        }
        return out.toString();
    }

    /** Python's {@code str.strip()}: removes leading and trailing Unicode whitespace (Jinja's {@code trim}). */
    static String pythonStrip(String s) {
        int start = 0;
        int end = s.length();
        while (start < end && isPythonSpace(s.charAt(start))) {
            start++;
        }
        while (end > start && isPythonSpace(s.charAt(end - 1))) {
            end--;
        }
        return s.substring(start, end);
    }

    private static boolean isPythonSpace(char c) {
        return Character.isWhitespace(c) || Character.isSpaceChar(c) || c == '\u0085';
    }

    /**
     * The check of Llama 2 and Mistral templates: user at even positions, assistant at odd ones.
     *
     * @param index position among the messages after an optional leading system message
     * @throws InvalidArgumentException ({@code messages}) otherwise
     */
    static void requireAlternatingRoles(ChatTemplate.Message message, int index) {
        String expected = index % 2 == 0 ? "user" : "assistant";
        if (!expected.equals(message.role())) {
            throw new InvalidArgumentException("messages",
                    "this model's chat template needs roles to alternate user/assistant/user/… after an optional"
                            + " system message; message " + index + " has role '" + message.role() + "'");
        }
    }
}
