package io.tandem.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.tandem.engine.gguf.GgufFile;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The stories260K SPM tokenizer against reference_outputs.json and against llama.cpp
 * ({@code /work/shared/tools/llamacpp-ref}, node-llama-cpp {@code model.tokenize(text, special)},
 * no BOS) for the tricky strings.
 */
class SentencePieceTokenizerTest {
    static final Path MODEL_DIR = Path.of(System.getProperty("tandem.shared.dir", "../../shared"), "models", "stories260K");
    private static GgufFile gguf;
    private static Tokenizer tokenizer;
    private static JsonNode reference;

    @BeforeAll
    static void load() throws Exception {
        gguf = GgufFile.open(MODEL_DIR.resolve("stories260K.gguf"));
        tokenizer = Tokenizer.fromGguf(gguf);
        reference = new ObjectMapper().readTree(MODEL_DIR.resolve("reference_outputs.json").toFile());
    }

    @AfterAll
    static void close() {
        gguf.close();
    }

    private static int[] ids(JsonNode array) {
        return StreamSupport.stream(array.spliterator(), false).mapToInt(JsonNode::asInt).toArray();
    }

    private static int[] concat(int[] a, int[] b) {
        return IntStream.concat(Arrays.stream(a), Arrays.stream(b)).toArray();
    }

    @Test
    void shouldBuildSentencePieceTokenizerForLlamaModel() {
        assertThat(tokenizer).isInstanceOf(SentencePieceTokenizer.class);
        assertThat(tokenizer.vocabSize()).isEqualTo(512);
        assertThat(tokenizer.bosId()).isEqualTo(1);
        assertThat(tokenizer.eosId()).isEqualTo(2);
        assertThat(tokenizer.addBos()).isTrue();
        assertThat(tokenizer.isControl(1)).isTrue();
        assertThat(tokenizer.isControl(403)).isFalse();
        assertThat(tokenizer.isEndOfGeneration(2)).isTrue();
        assertThat(tokenizer.isEndOfGeneration(1)).isFalse();
        assertThat(tokenizer.tokenText(403)).isEqualTo("\u2581Once");
    }

    @Test
    void shouldEncodeEveryReferenceTokenizerCaseExactly() {
        assertThat(reference.get("tokenizer_cases")).hasSize(6);
        for (JsonNode c : reference.get("tokenizer_cases")) {
            String text = c.get("text").asText();
            assertThat(tokenizer.encode(text, true, false)).as(text).containsExactly(ids(c.get("ids_with_bos")));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"once_upon_a_time", "lily_park", "bos_only"})
    void shouldEncodeReferencePromptsExactly(String name) {
        JsonNode r = reference.get(name);
        assertThat(tokenizer.encode(r.get("prompt").asText(), tokenizer.addBos(), false))
                .containsExactly(ids(r.get("prompt_token_ids")));
    }

    static Stream<Arguments> llamaCppCases() {
        return Stream.of(
                Arguments.of("  two  spaces", new int[] {410, 410, 259, 424, 414, 410, 262, 427, 412, 331, 419}),
                Arguments.of("line\nbreak", new int[] {278, 271, 411, 13, 430, 276, 412, 433}),
                Arguments.of("a\n\nb", new int[] {261, 13, 13, 430}),
                Arguments.of("\t tab", new int[] {410, 12, 259, 412, 430}),
                Arguments.of("   ", new int[] {410, 410, 410, 410}),
                Arguments.of(" ", new int[] {410, 410}),
                Arguments.of("\n", new int[] {410, 13}),
                Arguments.of("end. ", new int[] {344, 264, 426, 410}),
                Arguments.of("Hello, World!", new int[] {346, 306, 414, 432, 410, 448, 304, 341, 443}),
                Arguments.of("日本語", new int[] {410, 233, 154, 168, 233, 159, 175, 235, 173, 161}),
                Arguments.of("émoji 😀 mixed",
                        new int[] {410, 485, 423, 414, 449, 417, 410, 243, 162, 155, 131, 284, 417, 444, 266}),
                Arguments.of("Ünïcödé ẞ",
                        new int[] {410, 198, 159, 416, 198, 178, 429, 198, 185, 418, 485, 410, 228, 189, 161}),
                // Equal-score bigrams ("pp" twice in "ppp") merge leftmost first.
                Arguments.of("xppp", new int[] {410, 444, 339, 427}),
                Arguments.of("zooo", new int[] {410, 451, 347, 414}),
                Arguments.of("", new int[] {}));
    }

    @ParameterizedTest
    @MethodSource("llamaCppCases")
    void shouldEncodeLikeLlamaCpp(String text, int[] expected) {
        assertThat(tokenizer.encode(text, false, false)).containsExactly(expected);
    }

    @Test
    void shouldSpellSpecialTokensAsTextUnlessParseSpecial() {
        String text = "<s>Hi</s> there<unk>";
        assertThat(tokenizer.encode(text, false, false))
                .containsExactly(410, 504, 419, 505, 440, 417, 504, 492, 419, 505, 383, 504, 379, 433, 505);
        // The dummy-prefix space is added to the text after every special token, as llama.cpp does.
        assertThat(tokenizer.encode(text, false, true)).containsExactly(1, 320, 417, 2, 410, 383, 0);
        assertThat(tokenizer.encode("Hi <s> there", false, true)).containsExactly(320, 417, 410, 1, 410, 383);
        assertThat(tokenizer.encode("<unk>x", false, true)).containsExactly(0, 410, 444);
        assertThat(tokenizer.encode("</s>", true, true)).containsExactly(1, 2);
    }

    @Test
    void shouldDecodeTokensToTheirBytes() {
        assertThat(tokenizer.tokenBytes(1)).isEmpty();
        assertThat(tokenizer.tokenBytes(0)).as("<unk>").isEmpty();
        assertThat(tokenizer.tokenBytes(13)).containsExactly('\n');
        assertThat(tokenizer.tokenBytes(243)).containsExactly(0xF0);
        assertThat(new String(tokenizer.tokenBytes(403))).isEqualTo(" Once");
        assertThat(tokenizer.tokenByteLength(403)).isEqualTo(5);
        assertThatThrownBy(() -> tokenizer.tokenBytes(512)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("512");
    }

    @ParameterizedTest
    @ValueSource(strings = {"Hello world", " leading space", "trailing  ", "  two  spaces", "line\nbreak\n\n",
            "tabs\tand\r\nCRLF", "café 🦙", "日本語のテキスト", "emoji 👩‍👩‍👧 family", "Ünïcödé ẞ", "</s> literal <s>",
            "x", ""})
    void shouldRoundTripTextThroughEncodeAndDecodeFromStart(String text) {
        int[] ids = tokenizer.encode(text, true, false);
        assertThat(tokenizer.decodeFromStart(ids)).isEqualTo(text);
        assertThat(tokenizer.decode(ids)).as("raw decode keeps the dummy prefix")
                .isEqualTo(text.isEmpty() ? "" : " " + text);
    }

    @Test
    void shouldRoundTripTextWithSpecialTokensWhenParsed() {
        String text = "<s>Hi</s>  there<unk>";
        assertThat(tokenizer.decodeFromStart(tokenizer.encode(text, false, true))).isEqualTo("Hi  there");
    }

    @ParameterizedTest
    @ValueSource(strings = {"once_upon_a_time", "lily_park", "bos_only"})
    void shouldDecodeReferenceGenerationToReferenceText(String name) {
        JsonNode r = reference.get(name);
        int[] prompt = ids(r.get("prompt_token_ids"));
        int[] generated = ids(r.get("generated_token_ids"));
        String text = r.get("text").asText();
        // text = prompt + continuation, without the dummy-prefix space of the first piece after BOS.
        assertThat(tokenizer.decodeFromStart(concat(prompt, generated))).isEqualTo(text);
        assertThat(r.get("prompt").asText() + tokenizer.decode(generated))
                .isEqualTo(name.equals("bos_only") ? " " + text : text);
    }

    @Test
    @Timeout(value = 20, unit = TimeUnit.SECONDS)
    void shouldEncodeTenThousandTokenPromptQuickly() {
        String story = reference.get("bos_only").get("text").asText();
        String text = (story + "\n").repeat(40);
        long start = System.nanoTime();
        int[] ids = tokenizer.encode(text, true, false);
        long millis = (System.nanoTime() - start) / 1_000_000;
        assertThat(ids.length).isGreaterThan(10_000);
        assertThat(tokenizer.decodeFromStart(ids)).isEqualTo(text);
        assertThat(millis).as("encode of %d tokens took %d ms", ids.length, millis).isLessThan(5_000);
    }
}
