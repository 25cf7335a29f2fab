package io.tandem.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ShareGptDatasetTest {

    /** 10 words: ceil(10 × 1.3) = 13 tokens. */
    private static final String PROMPT = "Tell me a story about a cat who likes boxes.";
    /** 20 words: 26 tokens. */
    private static final String ANSWER = "Once upon a time a small grey cat found a box and sat in it all day long, very happy.";

    private static final String FILE = """
            [
              {"id": "ok", "conversations": [
                {"from": "human", "value": "%s"},
                {"from": "gpt", "value": "%s"},
                {"from": "human", "value": "and then?"}]},
              {"id": "gpt-first", "conversations": [
                {"from": "gpt", "value": "%s"},
                {"from": "human", "value": "%s"}]},
              {"id": "too-short", "conversations": [
                {"from": "human", "value": "Hi"},
                {"from": "gpt", "value": "%s"}]},
              {"id": "one-turn", "conversations": [{"from": "human", "value": "%s"}]},
              {"id": "short-answer", "conversations": [
                {"from": "human", "value": "Say yes to this question please"},
                {"from": "gpt", "value": "Yes."}]}
            ]
            """.formatted(PROMPT, ANSWER, ANSWER, PROMPT, ANSWER, PROMPT);

    @TempDir
    Path dir;

    private Path file() throws IOException {
        return Files.writeString(dir.resolve("sharegpt.json"), FILE);
    }

    @Test
    void shouldTakeTheHumanTurnAsPromptAndTheGptTurnAsOutputLength() throws IOException {
        List<SampleRequest> requests = ShareGptDataset.load(file(), 1, null, new SplittableRandom(0));

        assertThat(requests).containsExactly(new SampleRequest(new Prompt.Text(PROMPT), 13, 26));
    }

    @Test
    void shouldFixTheOutputLengthWhenGivenAndThenKeepShortAnswers() throws IOException {
        List<SampleRequest> requests = ShareGptDataset.load(file(), 2, 50, new SplittableRandom(0));

        // "Say yes to this question please": 6 words, 8 tokens; its 1-word answer no longer matters.
        assertThat(requests).containsExactlyInAnyOrder(
                new SampleRequest(new Prompt.Text(PROMPT), 13, 50),
                new SampleRequest(new Prompt.Text("Say yes to this question please"), 8, 50));
    }

    @Test
    void shouldRepeatValidEntriesWhenAskedForMoreThanTheFileHolds() throws IOException {
        List<SampleRequest> requests = ShareGptDataset.load(file(), 5, null, new SplittableRandom(0));

        assertThat(requests).hasSize(5).containsOnly(new SampleRequest(new Prompt.Text(PROMPT), 13, 26));
    }

    @Test
    void shouldEstimateTokensAsWhitespaceWordsTimesOnePointThreeRoundedUp() {
        assertThat(ShareGptDataset.estimateTokens("a b  c\n d")).isEqualTo(6);
        assertThat(ShareGptDataset.estimateTokens("word")).isEqualTo(2);
        assertThat(ShareGptDataset.estimateTokens("   ")).isZero();
    }

    @Test
    void shouldRejectAFileWithoutAnyValidConversation() throws IOException {
        Path empty = Files.writeString(dir.resolve("empty.json"), "[]");
        Path object = Files.writeString(dir.resolve("object.json"), "{}");

        assertThatThrownBy(() -> ShareGptDataset.load(empty, 1, null, new SplittableRandom(0)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("no ShareGPT entry");
        assertThatThrownBy(() -> ShareGptDataset.load(object, 1, null, new SplittableRandom(0)))
                .isInstanceOf(IOException.class).hasMessageContaining("JSON array");
    }
}
