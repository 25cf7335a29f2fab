package io.tandem.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tandem.engine.gguf.GgufFile;
import io.tandem.engine.gguf.GgufWriter;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Byte-level BPE over a tiny vocabulary written with {@link GgufWriter}: the 256 byte tokens (id =
 * byte value), the results of 19 merges (ids 256..274), {@code abc} (275) which no merge builds,
 * and four special tokens. The expected ids of the parameterized cases are what llama.cpp (via
 * node-llama-cpp, {@code vocabOnly}) produced for the same file.
 */
class Gpt2BpeTokenizerTest {
    static final String[] MERGES = {"H e", "l l", "o r", "Ġ w", "He ll", "Hell o", "Ġw or", "l d", "Ġwor ld", "' s",
        "1 2", "a a", "Ġ Ġ", "ĠĠ ĠĠ", "Ċ Ċ", "e r", "Ġ t", "h e", "Ġt he"};
    static final int HELLO = 261;
    static final int SPACE_WORLD = 264;
    static final int APOSTROPHE_S = 265;
    static final int TWELVE = 266;
    static final int ABC = 275;
    static final int BEGIN_OF_TEXT = 276;
    static final int IM_START = 277;
    static final int IM_END = 278;
    static final int TOOL = 279;

    @TempDir
    Path dir;

    /** Writes the test vocabulary with {@code tokenizer.ggml.pre = pre} ({@code null}: absent) and opens it. */
    Tokenizer tokenizer(String pre, Consumer<GgufWriter> extra) throws IOException {
        List<String> tokens = new ArrayList<>();
        List<Integer> types = new ArrayList<>();
        for (int b = 0; b < 256; b++) {
            tokens.add(String.valueOf(Gpt2ByteMapping.toChar(b)));
            types.add(TokenType.NORMAL.id());
        }
        for (String m : MERGES) {
            tokens.add(m.replace(" ", ""));
            types.add(TokenType.NORMAL.id());
        }
        tokens.add("abc");
        types.add(TokenType.NORMAL.id());
        for (String control : List.of("<|begin_of_text|>", "<|im_start|>", "<|im_end|>")) {
            tokens.add(control);
            types.add(TokenType.CONTROL.id());
        }
        tokens.add("<tool>");
        types.add(TokenType.USER_DEFINED.id());
        GgufWriter w = new GgufWriter().putString("tokenizer.ggml.model", "gpt2");
        if (pre != null) {
            w.putString("tokenizer.ggml.pre", pre);
        }
        w.putStringArray("tokenizer.ggml.tokens", tokens.toArray(String[]::new))
                .putInt32Array("tokenizer.ggml.token_type", types.stream().mapToInt(Integer::intValue).toArray())
                .putStringArray("tokenizer.ggml.merges", MERGES)
                .putUint32("tokenizer.ggml.bos_token_id", BEGIN_OF_TEXT)
                .putUint32("tokenizer.ggml.eos_token_id", IM_END);
        extra.accept(w);
        Path p = dir.resolve("bpe-" + pre + "-" + System.nanoTime() + ".gguf");
        w.write(p);
        try (GgufFile gguf = GgufFile.open(p)) {
            return Tokenizer.fromGguf(gguf);
        }
    }

    Tokenizer tokenizer(String pre) throws IOException {
        return tokenizer(pre, w -> { });
    }

    static Stream<Arguments> llamaCppCases() {
        return Stream.of(
                Arguments.of("llama-bpe", "Hello world's 123", new int[] {HELLO, SPACE_WORLD, APOSTROPHE_S, ' ', TWELVE, '3'}),
                Arguments.of("qwen2", "Hello world's 123", new int[] {HELLO, SPACE_WORLD, APOSTROPHE_S, ' ', '1', '2', '3'}),
                Arguments.of("smollm", "Hello world's 123", new int[] {HELLO, SPACE_WORLD, APOSTROPHE_S, ' ', '1', '2', '3'}),
                Arguments.of("gpt-2", "Hello world's 123", new int[] {HELLO, SPACE_WORLD, APOSTROPHE_S, ' ', TWELVE, '3'}),
                Arguments.of(null, "Hello world's 123", new int[] {HELLO, SPACE_WORLD, '\'', 's', ' ', TWELVE, '3'}),
                Arguments.of("llama-bpe", "12345 67", new int[] {TWELVE, '3', '4', '5', ' ', '6', '7'}),
                Arguments.of("llama-bpe", "hi\n\nthere", new int[] {'h', 'i', 270, 't', 'h', 271, 'e'}),
                Arguments.of("gpt-2", "hi\n\nthere", new int[] {'h', 'i', '\n', '\n', 't', 'h', 271, 'e'}),
                Arguments.of("llama-bpe", "abc abc", new int[] {ABC, ' ', 'a', 'b', 'c'}),
                Arguments.of("qwen2", "abc abc", new int[] {'a', 'b', 'c', ' ', 'a', 'b', 'c'}),
                Arguments.of("llama-bpe", "aaa aaaa", new int[] {267, 'a', ' ', 267, 267}),
                Arguments.of("llama-bpe", "   leading", new int[] {268, ' ', 'l', 'e', 'a', 'd', 'i', 'n', 'g'}),
                Arguments.of("llama-bpe", "the other", new int[] {'t', 273, ' ', 'o', 't', 'h', 271}),
                Arguments.of("llama-bpe", "I'M here, you'RE",
                        new int[] {'I', '\'', 'M', ' ', 'h', 271, 'e', ',', ' ', 'y', 'o', 'u', '\'', 'R', 'E'}),
                Arguments.of("llama-bpe", "naïve 🦙", new int[] {'n', 'a', 0xC3, 0xAF, 'v', 'e', ' ', 0xF0, 0x9F, 0xA6, 0x99}),
                Arguments.of("llama-bpe", "\n\n\n", new int[] {270, '\n'}),
                Arguments.of("llama-bpe", "a<tool>b", new int[] {'a', TOOL, 'b'}));
    }

    @ParameterizedTest
    @MethodSource("llamaCppCases")
    void shouldEncodeLikeLlamaCpp(String pre, String text, int[] expected) throws IOException {
        assertThat(tokenizer(pre).encode(text, false, false)).containsExactly(expected);
    }

    @Test
    void shouldApplyMergesByRankThenLeftmost() throws IOException {
        Tokenizer t = tokenizer("gpt-2");
        assertThat(t.encode("Hello", false, false)).containsExactly(HELLO);
        assertThat(t.encode(" world", false, false)).containsExactly(SPACE_WORLD);
        assertThat(t.encode("aaa", false, false)).as("equal ranks merge leftmost first").containsExactly(267, 'a');
    }

    @Test
    void shouldParseControlTokensOnlyWithParseSpecial() throws IOException {
        Tokenizer t = tokenizer("llama-bpe");
        String chat = "<|im_start|>user\nHello<|im_end|>";
        assertThat(t.encode(chat, false, true)).containsExactly(IM_START, 'u', 's', 271, '\n', HELLO, IM_END);
        int[] literal = t.encode(chat, false, false);
        assertThat(literal).doesNotContain(IM_START, IM_END);
        assertThat(t.decode(literal)).isEqualTo(chat);
        assertThat(t.encode("<|im_end|>", false, false)).containsExactly('<', '|', 'i', 'm', '_', 'e', 'n', 'd', '|', '>');
    }

    @Test
    void shouldFollowBosPolicyOfPreTokenizerUnlessGgufSaysOtherwise() throws IOException {
        Tokenizer llama3 = tokenizer("llama-bpe");
        assertThat(llama3.addBos()).isTrue();
        assertThat(llama3.bosId()).isEqualTo(BEGIN_OF_TEXT);
        assertThat(llama3.encode("Hello", true, false)).containsExactly(BEGIN_OF_TEXT, HELLO);
        assertThat(tokenizer("qwen2").addBos()).isFalse();
        assertThat(tokenizer("llama-bpe", w -> w.putBool("tokenizer.ggml.add_bos_token", false)).addBos()).isFalse();
        assertThat(tokenizer("qwen2", w -> w.putBool("tokenizer.ggml.add_bos_token", true)).addBos()).isTrue();
    }

    @Test
    void shouldDecodeControlTokensToNothingAndMarkEndOfGeneration() throws IOException {
        Tokenizer t = tokenizer("qwen2");
        assertThat(t.decode(new int[] {BEGIN_OF_TEXT, IM_START, HELLO, SPACE_WORLD, IM_END})).isEqualTo("Hello world");
        assertThat(t.decode(new int[] {TOOL})).isEqualTo("<tool>");
        assertThat(t.tokenBytes(' ')).containsExactly(' ');
        assertThat(t.tokenText(' ')).isEqualTo("Ġ");
        assertThat(t.isControl(IM_START)).isTrue();
        assertThat(t.isControl(TOOL)).isFalse();
        assertThat(t.isEndOfGeneration(IM_END)).isTrue();
        assertThat(t.isEndOfGeneration(IM_START)).isFalse();
        assertThat(t.eosId()).isEqualTo(IM_END);
    }

    @ParameterizedTest
    @ValueSource(strings = {"Hello world's 123", "héllo 🦙\n\ttabs  spaces", "日本語のテキスト", "   ", "don't\r\n\r\nstop",
        "$100 + 20% <=> ^~|", "a\u00a0b\u3000c", ""})
    void shouldRoundTripAnyText(String text) throws IOException {
        for (String pre : new String[] {"llama-bpe", "qwen2", "smollm", "gpt-2", null}) {
            Tokenizer t = tokenizer(pre);
            int[] ids = t.encode(text, false, true);
            assertThat(t.decode(ids)).as("pre %s", pre).isEqualTo(text);
            assertThat(t.decodeFromStart(ids)).isEqualTo(text);
        }
    }

    @Test
    void shouldNameUnsupportedPreTokenizerAndModel() throws IOException {
        assertThatThrownBy(() -> tokenizer("deepseek-coder"))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'deepseek-coder'");
        Path p = dir.resolve("t5.gguf");
        new GgufWriter().putString("tokenizer.ggml.model", "t5").write(p);
        try (GgufFile gguf = GgufFile.open(p)) {
            assertThatThrownBy(() -> Tokenizer.fromGguf(gguf))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'t5'");
        }
    }
}
