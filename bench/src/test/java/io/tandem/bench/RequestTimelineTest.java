package io.tandem.bench;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class RequestTimelineTest {

    @Test
    void shouldFailARequestWhoseStreamCarriedNoTokens() {
        RequestTimeline timeline = new RequestTimeline(0);
        timeline.onUsage(3, 0);

        assertThat(timeline.finish(3)).isEqualTo(new RequestResult.Failure("Never received a valid chunk to calculate TTFT."));
    }

    @Test
    void shouldCountStreamedTokensAndUseTheDatasetPromptLengthWithoutUsage() {
        RequestTimeline timeline = new RequestTimeline(1_000);
        timeline.onTokens(1_500, 2);
        timeline.onTokens(2_500, 3);

        RequestResult.Success s = (RequestResult.Success) timeline.finish(42);

        assertThat(s.outputTokens()).isEqualTo(5);
        assertThat(s.promptTokens()).isEqualTo(42);
        assertThat(s.ttftNanos()).isEqualTo(500);
        assertThat(s.e2elNanos()).isEqualTo(1_500);
        assertThat(s.itlNanos()).containsExactly(1_000);
    }

    @Test
    void shouldPreferTheServersUsageOverCountedChunks() {
        RequestTimeline timeline = new RequestTimeline(0);
        timeline.onTokens(10, 1);
        timeline.onUsage(7, 4);

        RequestResult.Success s = (RequestResult.Success) timeline.finish(42);

        assertThat(s.outputTokens()).isEqualTo(4);
        assertThat(s.promptTokens()).isEqualTo(7);
    }

    @Test
    void shouldKeepEveryGapOfALongStream() {
        RequestTimeline timeline = new RequestTimeline(0);
        for (int i = 1; i <= 100; i++) {
            timeline.onTokens(i * 10L, 1);
        }

        RequestResult.Success s = (RequestResult.Success) timeline.finish(1);

        assertThat(s.itlNanos()).hasSize(99).containsOnly(10L);
        assertThat(s.e2elNanos()).isEqualTo(1_000);
    }
}
