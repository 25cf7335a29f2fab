package io.tandem.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MooncakeTraceTest {

    private static final TokenIdRange IDS = new TokenIdRange(259, 500);
    private static final int B = MooncakeTrace.BLOCK_SIZE;

    @TempDir
    Path dir;

    private Path trace(String... lines) throws IOException {
        return Files.write(dir.resolve("trace.jsonl"), List.of(lines));
    }

    private static int[] ids(SampleRequest request) {
        return ((Prompt.TokenIds) request.prompt()).ids();
    }

    private static int[] slice(int[] ids, int from, int to) {
        return Arrays.copyOfRange(ids, from, to);
    }

    @Test
    void shouldRebuildIdenticalBlocksForIdenticalHashIds() throws IOException {
        MooncakeTrace trace = MooncakeTrace.read(trace(
                "{\"timestamp\": 1000, \"input_length\": 1100, \"output_length\": 10, \"hash_ids\": [1, 2, 3]}",
                "{\"timestamp\": 1500, \"input_length\": 700, \"output_length\": 5, \"hash_ids\": [1, 2]}",
                "{\"timestamp\": 3000, \"input_length\": 600, \"output_length\": 7, \"hash_ids\": [4, 2]}"), 100);

        List<SampleRequest> requests = trace.requests(IDS, PromptForm.TOKEN_IDS, 0);
        int[] a = ids(requests.get(0));
        int[] b = ids(requests.get(1));
        int[] c = ids(requests.get(2));

        assertThat(a).hasSize(1100);
        assertThat(b).hasSize(700);
        assertThat(c).hasSize(600);
        // Hash ids [1, 2] are shared by a and b: their first 700 tokens (block 1 and 188 of block 2) agree.
        assertThat(slice(b, 0, 700)).containsExactly(slice(a, 0, 700));
        // Block 2 is the second block of c too; block 4 is not block 1.
        assertThat(slice(c, B, 600)).containsExactly(slice(a, B, 600));
        assertThat(slice(c, 0, B)).isNotEqualTo(slice(a, 0, B));
        // Block 3 differs from blocks 1 and 2.
        assertThat(slice(a, 2 * B, 1100)).isNotEqualTo(slice(a, 0, 1100 - 2 * B));
        assertThat(requests).extracting(SampleRequest::expectedOutputLen).containsExactly(10, 5, 7);
        assertThat(requests).extracting(SampleRequest::promptLen).containsExactly(1100, 700, 600);
    }

    @Test
    void shouldScheduleArrivalsByTimestampRelativeToTheFirstEntry() throws IOException {
        MooncakeTrace trace = MooncakeTrace.read(trace(
                "{\"timestamp\": 1000, \"input_length\": 10, \"output_length\": 1, \"hash_ids\": [1]}",
                "",
                "{\"timestamp\": 1500, \"input_length\": 10, \"output_length\": 1, \"hash_ids\": [1]}",
                "{\"timestamp\": 3000.4, \"input_length\": 10, \"output_length\": 1, \"hash_ids\": [1]}"), 100);

        assertThat(trace.arrivalOffsetsNanos()).containsExactly(0L, 500_000_000L, 2_000_000_000L);
    }

    @Test
    void shouldFillAPromptLongerThanItsBlocksWithRequestSpecificTokens() throws IOException {
        MooncakeTrace trace = MooncakeTrace.read(trace(
                "{\"timestamp\": 0, \"input_length\": 600, \"output_length\": 1, \"hash_ids\": [9]}",
                "{\"timestamp\": 0, \"input_length\": 600, \"output_length\": 1, \"hash_ids\": [9]}"), 100);

        List<SampleRequest> requests = trace.requests(IDS, PromptForm.TOKEN_IDS, 0);

        assertThat(slice(ids(requests.get(0)), 0, B)).containsExactly(slice(ids(requests.get(1)), 0, B));
        assertThat(slice(ids(requests.get(0)), B, 600)).isNotEqualTo(slice(ids(requests.get(1)), B, 600));
    }

    @Test
    void shouldDeriveBlockContentFromTheSeed() throws IOException {
        MooncakeTrace trace = MooncakeTrace.read(trace(
                "{\"timestamp\": 0, \"input_length\": 64, \"output_length\": 1, \"hash_ids\": [1]}"), 100);

        assertThat(ids(trace.requests(IDS, PromptForm.TOKEN_IDS, 1).getFirst()))
                .containsExactly(ids(trace.requests(IDS, PromptForm.TOKEN_IDS, 1).getFirst()))
                .isNotEqualTo(ids(trace.requests(IDS, PromptForm.TOKEN_IDS, 2).getFirst()));
    }

    @Test
    void shouldReadOnlyTheFirstEntriesUpToTheLimit() throws IOException {
        MooncakeTrace trace = MooncakeTrace.read(trace(
                "{\"timestamp\": 0, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": [1]}",
                "{\"timestamp\": 5, \"input_length\": 2, \"output_length\": 1, \"hash_ids\": [1]}",
                "{\"timestamp\": 9, \"input_length\": 3, \"output_length\": 1, \"hash_ids\": [1]}"), 2);

        assertThat(trace.entries()).extracting(MooncakeTrace.Entry::inputLength).containsExactly(1, 2);
    }

    @Test
    void shouldNameTheLineAndFieldOfAMalformedEntry() throws IOException {
        Path file = trace(
                "{\"timestamp\": 0, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": [1]}",
                "{\"timestamp\": 0, \"input_length\": \"many\", \"output_length\": 1, \"hash_ids\": [1]}");

        assertThatThrownBy(() -> MooncakeTrace.read(file, 100))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("trace.jsonl:2")
                .hasMessageContaining("input_length must be an integer");
    }
}
