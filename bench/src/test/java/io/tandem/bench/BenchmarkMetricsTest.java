package io.tandem.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;
import static org.assertj.core.data.Percentage.withPercentage;

import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The vLLM metric definitions on hand-made timelines. Expected values are worked out by hand in
 * milliseconds; latency figures come from 3-significant-digit histograms, so they are compared
 * within 0.1%.
 */
class BenchmarkMetricsTest {

    private static final long SEND = 5_000_000_000L;

    /**
     * A: prompt 10, chunks at 100, 120, 150, 200 ms, usage says 4 tokens.
     * TTFT 100, E2EL 200, TPOT (200 − 100) / 3 = 33.33, ITL 20, 30, 50.
     */
    private static RequestResult requestA() {
        return timeline(10, 4, 100, 120, 150, 200);
    }

    /** B: prompt 20, chunks at 50, 90 ms, 2 tokens. TTFT 50, E2EL 90, TPOT 40, ITL 40. */
    private static RequestResult requestB() {
        return timeline(20, 2, 50, 90);
    }

    /** C: prompt 30, one chunk at 300 ms, 1 token. TTFT 300, E2EL 300, no TPOT, no ITL. */
    private static RequestResult requestC() {
        return timeline(30, 1, 300);
    }

    private static final List<RequestResult> RUN = List.of(requestA(), requestB(), requestC(),
            new RequestResult.Failure("HTTP 429: overloaded"), new RequestResult.Failure("gRPC NOT_FOUND: no model"),
            new RequestResult.Failure("HTTP 429: overloaded"));

    private static final long TWO_SECONDS = TimeUnit.SECONDS.toNanos(2);

    private static RequestResult timeline(int promptTokens, int usageTokens, double... chunkMs) {
        RequestTimeline timeline = new RequestTimeline(SEND);
        for (double ms : chunkMs) {
            timeline.onTokens(SEND + Math.round(ms * 1e6), 1);
        }
        timeline.onUsage(promptTokens, usageTokens);
        return timeline.finish(999);
    }

    @Test
    void shouldCountRequestsTokensAndThroughputOverTheDuration() {
        BenchmarkMetrics m = BenchmarkMetrics.compute(RUN, TWO_SECONDS, GoodputSlo.NONE);

        assertThat(m.completed()).isEqualTo(3);
        assertThat(m.failed()).isEqualTo(3);
        assertThat(m.totalInputTokens()).isEqualTo(10 + 20 + 30);
        assertThat(m.totalOutputTokens()).isEqualTo(4 + 2 + 1);
        assertThat(m.durationSeconds()).isEqualTo(2.0);
        assertThat(m.requestThroughput()).isEqualTo(1.5);
        assertThat(m.outputThroughput()).isEqualTo(3.5);
        assertThat(m.totalTokenThroughput()).isEqualTo((60 + 7) / 2.0);
        assertThat(m.requestGoodput()).isEmpty();
    }

    @Test
    void shouldGroupFailureReasonsMostFrequentFirst() {
        BenchmarkMetrics m = BenchmarkMetrics.compute(RUN, TWO_SECONDS, GoodputSlo.NONE);

        assertThat(m.failureReasons()).containsExactly(
                Map.entry("HTTP 429: overloaded", 2), Map.entry("gRPC NOT_FOUND: no model", 1));
    }

    @Test
    void shouldMeasureTtftFromSendToFirstTokenChunk() {
        LatencyStats ttft = BenchmarkMetrics.compute(RUN, TWO_SECONDS, GoodputSlo.NONE).ttft();

        // 100, 50, 300 ms: mean 150; population std sqrt((50² + 100² + 150²) / 3) = 108.01.
        assertThat(ttft.count()).isEqualTo(3);
        assertThat(ttft.meanMs()).isCloseTo(150, withPercentage(0.1));
        assertThat(ttft.stdMs()).isCloseTo(Math.sqrt((2500 + 10000 + 22500) / 3.0), withPercentage(0.1));
        assertThat(ttft.medianMs()).isCloseTo(100, withPercentage(0.1));
        assertThat(ttft.p90Ms()).isCloseTo(300, withPercentage(0.1));
        assertThat(ttft.p99Ms()).isCloseTo(300, withPercentage(0.1));
    }

    @Test
    void shouldComputeTpotOnlyForRequestsWithMoreThanOneOutputToken() {
        LatencyStats tpot = BenchmarkMetrics.compute(RUN, TWO_SECONDS, GoodputSlo.NONE).tpot();

        // A: (200 − 100) / (4 − 1) = 33.33; B: (90 − 50) / (2 − 1) = 40; C has one token: no TPOT.
        assertThat(tpot.count()).isEqualTo(2);
        assertThat(tpot.meanMs()).isCloseTo((100.0 / 3 + 40) / 2, withPercentage(0.1));
        assertThat(tpot.medianMs()).isCloseTo(100.0 / 3, withPercentage(0.1));
        assertThat(tpot.p99Ms()).isCloseTo(40, withPercentage(0.1));
    }

    @Test
    void shouldPoolEveryGapBetweenTokenChunksAsItl() {
        LatencyStats itl = BenchmarkMetrics.compute(RUN, TWO_SECONDS, GoodputSlo.NONE).itl();

        // A: 20, 30, 50; B: 40; C: none. Sorted 20, 30, 40, 50: median (2nd of 4) 30, p90 50.
        assertThat(itl.count()).isEqualTo(4);
        assertThat(itl.meanMs()).isCloseTo(35, withPercentage(0.1));
        assertThat(itl.medianMs()).isCloseTo(30, withPercentage(0.1));
        assertThat(itl.p90Ms()).isCloseTo(50, withPercentage(0.1));
    }

    @Test
    void shouldMeasureE2elFromSendToLastTokenChunk() {
        LatencyStats e2el = BenchmarkMetrics.compute(RUN, TWO_SECONDS, GoodputSlo.NONE).e2el();

        // 200, 90, 300 ms.
        assertThat(e2el.count()).isEqualTo(3);
        assertThat(e2el.meanMs()).isCloseTo(590.0 / 3, withPercentage(0.1));
        assertThat(e2el.medianMs()).isCloseTo(200, withPercentage(0.1));
        assertThat(e2el.p99Ms()).isCloseTo(300, withPercentage(0.1));
    }

    @Test
    void shouldCountTpotPerTokenButItlPerChunkWhenChunksCarrySeveralTokens() {
        RequestTimeline timeline = new RequestTimeline(SEND);
        for (int ms : new int[] {10, 20, 30, 40}) {
            timeline.onTokens(SEND + TimeUnit.MILLISECONDS.toNanos(ms), 2);
        }
        timeline.onUsage(5, 8);
        RequestResult.Success s = (RequestResult.Success) timeline.finish(5);

        assertThat(s.outputTokens()).isEqualTo(8);
        assertThat(s.tpotNanos()).isCloseTo(TimeUnit.MILLISECONDS.toNanos(30) / 7.0, within(1e-6));
        assertThat(s.itlNanos()).containsExactly(10_000_000L, 10_000_000L, 10_000_000L);
    }

    @Test
    void shouldCountOnlyRequestsMeetingEverySloAsGoodput() {
        // A meets ttft 100 <= 120 and tpot 33.3 <= 35; B misses tpot 40; C misses ttft 300.
        BenchmarkMetrics m = BenchmarkMetrics.compute(RUN, TWO_SECONDS, GoodputSlo.parse(List.of("ttft:120", "tpot:35")));

        assertThat(m.requestGoodput()).hasValue(1 / 2.0);
    }

    @Test
    void shouldTreatAnSloEqualToTheValueAsMet() {
        // E2EL: A 200 (equal), B 90, C 300.
        BenchmarkMetrics m = BenchmarkMetrics.compute(RUN, TWO_SECONDS, GoodputSlo.parse(List.of("e2el:200")));

        assertThat(m.requestGoodput()).hasValue(2 / 2.0);
    }

    @Test
    void shouldLetASingleTokenRequestMeetAnyTpotSlo() {
        // TPOT 0 for C (one token), as vLLM; A and B have positive TPOT.
        BenchmarkMetrics m = BenchmarkMetrics.compute(RUN, TWO_SECONDS, GoodputSlo.parse(List.of("tpot:0")));

        assertThat(m.requestGoodput()).hasValue(1 / 2.0);
    }

    @Test
    void shouldReportZerosWhenEveryRequestFailed() {
        BenchmarkMetrics m = BenchmarkMetrics.compute(List.of(new RequestResult.Failure("x")), TWO_SECONDS, GoodputSlo.NONE);

        assertThat(m.completed()).isZero();
        assertThat(m.ttft()).isEqualTo(LatencyStats.EMPTY);
        assertThat(m.tpot()).isEqualTo(LatencyStats.EMPTY);
        assertThat(m.requestThroughput()).isZero();
    }
}
