package io.tandem.router.template;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tandem.engine.InvalidArgumentException;
import io.tandem.router.ChatTemplate;
import io.tandem.router.ChatTemplate.Message;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Renders each family with the Jinja source its model ships and compares with the text Hugging
 * Face's {@code apply_chat_template} produces for the same messages.
 */
class ChatTemplatesTest {

    // Jinja sources as stored in tokenizer_config.json / GGUF tokenizer.chat_template ("\\n" is the
    // two characters backslash-n inside a Jinja string literal).
    static final String SMOLLM2 = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
            + "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
            + "{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
            + "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
    static final String QWEN25_EXCERPT = "{%- if tools %}{{- '<|im_start|>system\\n' }}{%- if messages[0]['role'] == 'system' %}"
            + "{{- messages[0]['content'] }}{%- else %}{{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}"
            + "{%- endif %}{%- else %}{%- if messages[0]['role'] == 'system' %}"
            + "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}{%- else %}"
            + "{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}"
            + "{%- endif %}{%- endif %}";
    static final String LLAMA3 = "{% set loop_messages = messages %}{% for message in loop_messages %}"
            + "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}"
            + "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
            + "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
    static final String LLAMA31_EXCERPT = "{{- bos_token }}\n{%- if not date_string is defined %}\n"
            + "    {%- set date_string = \"26 Jul 2024\" %}\n{%- endif %}\n"
            + "{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n{{- \"Cutting Knowledge Date: December 2023\\n\" }}\n"
            + "{{- \"Today Date: \" + date_string + \"\\n\\n\" }}";
    static final String LLAMA32_EXCERPT = "{{- bos_token }}\n{%- if not date_string is defined %}\n"
            + "    {%- if strftime_now is defined %}\n        {%- set date_string = strftime_now(\"%d %b %Y\") %}\n"
            + "    {%- else %}\n        {%- set date_string = \"26 Jul 2024\" %}\n    {%- endif %}\n{%- endif %}\n"
            + "{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}{{- \"Cutting Knowledge Date: December 2023\\n\" }}";
    static final String LLAMA2 = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
            + "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
            + "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
            + "{% if loop.index0 == 0 and system_message != false %}"
            + "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
            + "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
            + "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
            + "{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";
    static final String MISTRAL_V01 = "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
            + "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
            + "{{ message['content'] + eos_token + ' ' }}{% endif %}{% endfor %}";
    static final String MISTRAL_V02 = "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
            + "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
            + "{{ message['content'] + eos_token}}{% endif %}{% endfor %}";
    static final String MISTRAL_V03_EXCERPT = "{%- if tools is not none and (message == user_messages[-1]) %}"
            + "{{- \"[AVAILABLE_TOOLS] [\" }}{%- endif %}{%- if loop.last and system_message is defined %}"
            + "{{- \"[INST] \" + system_message + \"\\n\\n\" + message[\"content\"] + \"[/INST]\" }}";
    static final String ZEPHYR = "{% for message in messages %}\n{% if message['role'] == 'user' %}\n"
            + "{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n"
            + "{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n"
            + "{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n"
            + "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}";
    static final String GEMMA = "{{ bos_token }}{% for message in messages %}"
            + "{{ '<start_of_turn>' + message['role'] + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}";

    private static final List<Message> USER_HI = List.of(new Message("user", "Hi"));
    private static final List<Message> MULTI_TURN = List.of(
            new Message("user", "Hi"), new Message("assistant", "Hello!"), new Message("user", "Bye"));

    @Test
    void shouldFallBackToPlainChatMlWhenModelHasNoTemplate() {
        ChatTemplate template = ChatTemplates.forTemplate(null, "<s>");

        assertThat(template.render(USER_HI, true)).isEqualTo("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
        assertThat(template.includesBos()).isFalse();
        assertThat(ChatTemplates.forTemplate("  ", "<s>")).isEqualTo(template);
    }

    @Test
    void shouldRenderSmolLm2DefaultSystemPromptWhenConversationHasNone() {
        ChatTemplate template = ChatTemplates.forTemplate(SMOLLM2, "<|im_start|>");

        assertThat(template.render(List.of(new Message("user", "What is 2+2?")), true)).isEqualTo(
                "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
                        + "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n");
        assertThat(template.includesBos()).isFalse();
    }

    @Test
    void shouldUseCallersSystemMessageInsteadOfChatMlDefault() {
        ChatTemplate template = ChatTemplates.forTemplate(SMOLLM2, null);
        List<Message> messages = List.of(new Message("system", "Be brief."), new Message("user", "Hi"),
                new Message("assistant", "Hello!"));

        assertThat(template.render(messages, false)).isEqualTo(
                "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                        + "<|im_start|>assistant\nHello!<|im_end|>\n");
    }

    @Test
    void shouldFindQwen25DefaultSystemPromptInElseBranchNotInToolsBranch() {
        ChatTemplate template = ChatTemplates.forTemplate(QWEN25_EXCERPT, null);

        assertThat(template).isEqualTo(new ChatMlTemplate("You are Qwen, created by Alibaba Cloud. You are a helpful assistant."));
    }

    @Test
    void shouldReadDefaultSystemPromptWhenTemplateHoldsRealNewlines() {
        String withRealNewline = SMOLLM2.replace("\\n", "\n");

        assertThat(ChatTemplates.forTemplate(withRealNewline, null))
                .isEqualTo(new ChatMlTemplate("You are a helpful AI assistant named SmolLM, trained by Hugging Face"));
    }

    @Test
    void shouldRenderLlama3WithBosOnceAndTrimmedContent() {
        ChatTemplate template = ChatTemplates.forTemplate(LLAMA3, "<|begin_of_text|>");
        List<Message> messages = List.of(new Message("system", "  Be brief. "), new Message("user", "Hi\n"));

        assertThat(template.render(messages, true)).isEqualTo("<|begin_of_text|>"
                + "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n");
        assertThat(template.includesBos()).isTrue();
    }

    @Test
    void shouldOpenLlama31WithDatedSystemTurnEvenWithoutSystemMessage() {
        ChatTemplate template = ChatTemplates.forTemplate(LLAMA31_EXCERPT, "<|begin_of_text|>");

        assertThat(template.render(USER_HI, true)).isEqualTo("<|begin_of_text|>"
                + "<|start_header_id|>system<|end_header_id|>\n\n"
                + "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n");
    }

    @Test
    void shouldPutLlama31SystemMessageAfterDateAndToolResultsUnderIpython() {
        ChatTemplate template = ChatTemplates.forTemplate(LLAMA31_EXCERPT, "<|begin_of_text|>");
        List<Message> messages = List.of(new Message("system", "Be brief.\n"), new Message("user", "Hi"),
                new Message("tool", "{\"t\": 21}"));

        assertThat(template.render(messages, false)).isEqualTo("<|begin_of_text|>"
                + "<|start_header_id|>system<|end_header_id|>\n\n"
                + "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nBe brief.<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                + "<|start_header_id|>ipython<|end_header_id|>\n\n{\"t\": 21}<|eot_id|>");
    }

    @Test
    void shouldDateLlama32SystemTurnTodayLikeStrftimeNow() {
        Clock clock = Clock.fixed(Instant.parse("2025-03-05T10:00:00Z"), ZoneOffset.UTC);
        ChatTemplate template = ChatTemplates.forTemplate(LLAMA32_EXCERPT, "<|begin_of_text|>", "<|eot_id|>", clock);

        assertThat(template.render(USER_HI, true)).contains("Today Date: 05 Mar 2025\n\n<|eot_id|>");
    }

    @Test
    void shouldFoldLlama2SystemMessageIntoFirstUserTurn() {
        ChatTemplate template = ChatTemplates.forTemplate(LLAMA2, "<s>");
        List<Message> messages = List.of(new Message("system", "Be brief."), new Message("user", "Hi"),
                new Message("assistant", "Hello!"), new Message("user", "Bye"));

        assertThat(template.render(messages, true)).isEqualTo(
                "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Bye [/INST]");
        assertThat(template.includesBos()).isTrue();
    }

    @Test
    void shouldRejectLlama2ConversationWhoseRolesDoNotAlternate() {
        ChatTemplate template = ChatTemplates.forTemplate(LLAMA2, "<s>");
        List<Message> twoUsers = List.of(new Message("user", "Hi"), new Message("user", "Again"));

        assertThatThrownBy(() -> template.render(twoUsers, true))
                .isInstanceOfSatisfying(InvalidArgumentException.class, e -> assertThat(e.param()).isEqualTo("messages"))
                .hasMessageContaining("alternate");
    }

    @Test
    void shouldRenderMistralV01WithSpaceAfterEos() {
        assertThat(ChatTemplates.forTemplate(MISTRAL_V01, "<s>").render(MULTI_TURN, true))
                .isEqualTo("<s>[INST] Hi [/INST]Hello!</s> [INST] Bye [/INST]");
    }

    @Test
    void shouldRenderMistralV02WithoutSpaceAfterEos() {
        assertThat(ChatTemplates.forTemplate(MISTRAL_V02, "<s>").render(MULTI_TURN, true))
                .isEqualTo("<s>[INST] Hi [/INST]Hello!</s>[INST] Bye [/INST]");
    }

    @Test
    void shouldRejectSystemMessageForMistralV02LikeItsTemplate() {
        ChatTemplate template = ChatTemplates.forTemplate(MISTRAL_V02, "<s>");

        assertThatThrownBy(() -> template.render(List.of(new Message("system", "S"), new Message("user", "Hi")), true))
                .isInstanceOf(InvalidArgumentException.class);
    }

    @Test
    void shouldRenderMistralV03SystemMessageBeforeLastUserTurn() {
        ChatTemplate template = ChatTemplates.forTemplate(MISTRAL_V03_EXCERPT, "<s>");
        List<Message> messages = List.of(new Message("system", "Be brief."), new Message("user", "Hi"),
                new Message("assistant", " Hello! "), new Message("user", "Bye"));

        assertThat(template.render(messages, true)).isEqualTo("<s>[INST] Hi[/INST] Hello!</s>[INST] Be brief.\n\nBye[/INST]");
    }

    @Test
    void shouldRenderZephyrTurnsWithEosAndNewline() {
        ChatTemplate template = ChatTemplates.forTemplate(ZEPHYR, "<s>");
        List<Message> messages = List.of(new Message("system", "Be brief."), new Message("user", "Hi"));

        assertThat(template.render(messages, true)).isEqualTo("<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\n");
        assertThat(template.render(messages, false)).isEqualTo("<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n");
        assertThat(template.includesBos()).isFalse();
    }

    @Test
    void shouldFallBackToChatMlForUnrecognisedTemplate() {
        assertThat(ChatTemplates.forTemplate(GEMMA, "<bos>")).isEqualTo(new ChatMlTemplate(null));
    }

    @Test
    void shouldStripUnicodeWhitespaceLikePython() {
        assertThat(ChatTemplates.pythonStrip("\u00a0\t Hi \u3000\n")).isEqualTo("Hi");
    }
}
