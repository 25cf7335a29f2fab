package io.tandem.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.data.Percentage.withPercentage;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class ArrivalScheduleTest {

    private static final int SAMPLES = 10_000;

    @Test
    void shouldDrawGapsWithMeanOneOverTheRate() {
        double rate = 20;
        long[] offsets = ArrivalSchedule.poisson(rate, SAMPLES + 1, new SplittableRandom(7));

        double meanGapSeconds = offsets[SAMPLES] / 1e9 / SAMPLES;
        // The mean of 10k exponential gaps has a relative standard error of 1%; 3% is three of them.
        assertThat(meanGapSeconds).isCloseTo(1 / rate, withPercentage(3));
    }

    @Test
    void shouldDrawExponentialGapsWhoseStandardDeviationEqualsTheirMean() {
        long[] offsets = ArrivalSchedule.poisson(5, SAMPLES + 1, new SplittableRandom(11));
        double sum = 0;
        double sumSquares = 0;
        for (int i = 1; i <= SAMPLES; i++) {
            double gap = (offsets[i] - offsets[i - 1]) / 1e9;
            sum += gap;
            sumSquares += gap * gap;
        }
        double mean = sum / SAMPLES;
        double std = Math.sqrt(sumSquares / SAMPLES - mean * mean);

        // A fixed-interval or uniform schedule would give a ratio far below 1.
        assertThat(std / mean).isCloseTo(1.0, withPercentage(5));
    }

    @Test
    void shouldStartAtZeroAndNeverGoBackInTime() {
        long[] offsets = ArrivalSchedule.poisson(100, 1000, new SplittableRandom(1));

        assertThat(offsets[0]).isZero();
        assertThat(offsets).isSorted();
        assertThat(offsets[999]).isPositive();
    }

    @Test
    void shouldRepeatTheScheduleForTheSameSeed() {
        assertThat(ArrivalSchedule.poisson(3, 50, new SplittableRandom(42)))
                .containsExactly(ArrivalSchedule.poisson(3, 50, new SplittableRandom(42)));
        assertThat(ArrivalSchedule.poisson(3, 50, new SplittableRandom(42)))
                .isNotEqualTo(ArrivalSchedule.poisson(3, 50, new SplittableRandom(43)));
    }

    @Test
    void shouldSendEverythingAtOnceForInfiniteRate() {
        assertThat(ArrivalSchedule.poisson(ArrivalSchedule.INFINITE_RATE, 100, new SplittableRandom(1))).hasSize(100).containsOnly(0L);
    }

    @Test
    void shouldParseInfAndPositiveRatesOnly() {
        assertThat(ArrivalSchedule.parseRate("inf")).isInfinite();
        assertThat(ArrivalSchedule.parseRate("2.5")).isEqualTo(2.5);
        assertThatThrownBy(() -> ArrivalSchedule.parseRate("0")).hasMessageContaining("positive number or inf, got '0'");
        assertThatThrownBy(() -> ArrivalSchedule.parseRate("-1")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> ArrivalSchedule.parseRate("fast")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> ArrivalSchedule.parseRate("NaN")).isInstanceOf(IllegalArgumentException.class);
    }
}
