package io.tandem.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class RandomDatasetTest {

    private static final TokenIdRange IDS = new TokenIdRange(259, 500);

    private static int[] ids(SampleRequest request) {
        return ((Prompt.TokenIds) request.prompt()).ids();
    }

    @Test
    void shouldDrawLengthsUniformlyWithinTheRangeRatioIncludingBothEnds() {
        // input 100, r 0.5 → [50, 150]; output 21, r 0.5 → [floor(10.5), ceil(31.5)] = [10, 32].
        List<SampleRequest> requests = new RandomDataset(100, 21, 0.5, 0, IDS, PromptForm.TOKEN_IDS)
                .sample(3000, new SplittableRandom(3));

        int[] inputs = requests.stream().mapToInt(SampleRequest::promptLen).toArray();
        int[] outputs = requests.stream().mapToInt(SampleRequest::expectedOutputLen).toArray();
        assertThat(Arrays.stream(inputs).min().orElseThrow()).isEqualTo(50);
        assertThat(Arrays.stream(inputs).max().orElseThrow()).isEqualTo(150);
        assertThat(Arrays.stream(outputs).min().orElseThrow()).isEqualTo(10);
        assertThat(Arrays.stream(outputs).max().orElseThrow()).isEqualTo(32);
        assertThat(Arrays.stream(inputs).average().orElseThrow()).isBetween(95.0, 105.0);
        assertThat(requests).allSatisfy(r -> assertThat(ids(r)).hasSize(r.promptLen()));
    }

    @Test
    void shouldGiveExactLengthsWithRangeRatioZero() {
        List<SampleRequest> requests = new RandomDataset(32, 16, 0, 0, IDS, PromptForm.TOKEN_IDS).sample(20, new SplittableRandom(1));

        assertThat(requests).hasSize(20).allSatisfy(r -> {
            assertThat(r.promptLen()).isEqualTo(32);
            assertThat(ids(r)).hasSize(32);
            assertThat(r.expectedOutputLen()).isEqualTo(16);
        });
    }

    @Test
    void shouldDrawTokenIdsFromTheConfiguredRangeOnly() {
        List<SampleRequest> requests = new RandomDataset(200, 4, 0, 0, new TokenIdRange(300, 303), PromptForm.TOKEN_IDS)
                .sample(50, new SplittableRandom(5));

        int[] all = requests.stream().flatMapToInt(r -> Arrays.stream(ids(r))).toArray();
        assertThat(all).containsOnly(300, 301, 302).contains(300, 301, 302);
    }

    @Test
    void shouldStartEveryPromptWithTheSameSharedPrefix() {
        List<SampleRequest> requests = new RandomDataset(10, 4, 0.5, 64, IDS, PromptForm.TOKEN_IDS).sample(30, new SplittableRandom(9));

        int[] prefix = Arrays.copyOf(ids(requests.getFirst()), 64);
        assertThat(requests).allSatisfy(r -> {
            assertThat(Arrays.copyOf(ids(r), 64)).containsExactly(prefix);
            assertThat(r.promptLen()).isBetween(64 + 5, 64 + 15);
        });
        // The suffixes are random: not all requests are the same prompt.
        assertThat(requests.stream().map(SampleRequest::prompt).distinct().count()).isGreaterThan(25);
    }

    @Test
    void shouldShareThePrefixWordsInTextForm() {
        List<SampleRequest> requests = new RandomDataset(8, 4, 0, 16, IDS, PromptForm.TEXT).sample(10, new SplittableRandom(9));

        List<String> prefixes = requests.stream()
                .map(r -> String.join(" ", Arrays.copyOf(((Prompt.Text) r.prompt()).text().split(" "), 16)))
                .distinct().toList();
        assertThat(prefixes).hasSize(1);
        assertThat(requests).allSatisfy(r -> assertThat(((Prompt.Text) r.prompt()).text().split(" ")).hasSize(24));
    }

    @Test
    void shouldRepeatTheRequestsForTheSameSeed() {
        RandomDataset dataset = new RandomDataset(16, 8, 0.25, 4, IDS, PromptForm.TOKEN_IDS);

        assertThat(dataset.sample(10, new SplittableRandom(1))).isEqualTo(dataset.sample(10, new SplittableRandom(1)));
        assertThat(dataset.sample(10, new SplittableRandom(1))).isNotEqualTo(dataset.sample(10, new SplittableRandom(2)));
    }

    @Test
    void shouldNeverAskForZeroOutputTokens() {
        List<SampleRequest> requests = new RandomDataset(8, 1, 0.9, 0, IDS, PromptForm.TOKEN_IDS).sample(200, new SplittableRandom(1));

        assertThat(requests).allSatisfy(r -> assertThat(r.expectedOutputLen()).isBetween(1, 2));
    }

    @Test
    void shouldRejectARangeRatioOutsideZeroToOne() {
        assertThatThrownBy(() -> new RandomDataset(8, 8, 1.0, 0, IDS, PromptForm.TOKEN_IDS))
                .hasMessageContaining("range ratio must be in [0, 1), got 1.0");
    }
}
