package io.tandem.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

/** Word splits of the pre-tokenizer regexes, as GPT-2 / Llama-3 / Qwen2 tokenizers split. */
class BpePreTokenizerTest {

    @Test
    void shouldSplitLikeLlama3() {
        BpePreTokenizer p = BpePreTokenizer.forName("llama-bpe");
        assertThat(p.split("Hello world's 123")).containsExactly("Hello", " world", "'s", " ", "123");
        assertThat(p.split("12345")).containsExactly("123", "45");
        assertThat(p.split("a  b")).containsExactly("a", " ", " b");
        assertThat(p.split("hi\n\nthere")).containsExactly("hi", "\n\n", "there");
        assertThat(p.split("I'M HERE")).containsExactly("I", "'M", " HERE");
        assertThat(p.split("(x)=>{y};")).containsExactly("(x", ")=>{", "y", "};");
        assertThat(p.split("naïve café")).containsExactly("naïve", " café");
        assertThat(p.split("end.  ")).containsExactly("end", ".", "  ");
    }

    @Test
    void shouldSplitLikeGpt2() {
        BpePreTokenizer p = BpePreTokenizer.forName("gpt-2");
        assertThat(p.split("Hello world's 123")).containsExactly("Hello", " world", "'s", " 123");
        assertThat(p.split("I'M")).containsExactly("I", "'", "M");
        assertThat(p.split("a  b")).containsExactly("a", " ", " b");
    }

    @Test
    void shouldSplitDigitsSinglyForQwen2AndSmolLm() {
        assertThat(BpePreTokenizer.forName("qwen2").split("Hello world's 123"))
                .containsExactly("Hello", " world", "'s", " ", "1", "2", "3");
        assertThat(BpePreTokenizer.forName("smollm").split("Hello world's 123"))
                .containsExactly("Hello", " world", "'s", " ", "1", "2", "3");
    }

    @Test
    void shouldApplyLlamaCppDefaultChainWhenPreIsMissing() {
        BpePreTokenizer p = BpePreTokenizer.forName(null);
        assertThat(p).isSameAs(BpePreTokenizer.DEFAULT).isSameAs(BpePreTokenizer.forName("default"));
        assertThat(p.split("Hello world's 123")).containsExactly("Hello", " world", "'", "s", " ", "123");
    }

    @Test
    void shouldTreatUnicodeSpacesAsWhitespace() {
        assertThat(BpePreTokenizer.forName("llama3").split("a\u3000\u3000b")).containsExactly("a", "\u3000", "\u3000b");
    }

    @Test
    void shouldRejectUnknownPreTokenizerNamingIt() {
        assertThatThrownBy(() -> BpePreTokenizer.forName("tekken"))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'tekken'");
    }
}
