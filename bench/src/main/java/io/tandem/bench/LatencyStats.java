package io.tandem.bench;

import org.HdrHistogram.Histogram;

/**
 * Summary of one latency metric (TTFT, TPOT, ITL or E2EL) in milliseconds, read from an
 * HdrHistogram of microseconds with 3 significant digits, so every figure is within 0.1% of the
 * exact value. The standard deviation is the population one (numpy's default, as vLLM reports).
 * Percentiles are HdrHistogram's: the smallest recorded value that at least that share of the
 * values do not exceed; vLLM's numpy percentiles interpolate between neighbouring samples
 * instead, which differs on small sample counts only.
 *
 * @param count    values recorded
 * @param meanMs   mean
 * @param stdMs    population standard deviation
 * @param medianMs 50th percentile
 * @param p90Ms    90th percentile
 * @param p99Ms    99th percentile
 */
public record LatencyStats(long count, double meanMs, double stdMs, double medianMs, double p90Ms, double p99Ms) {

    /** No values: every figure 0, as vLLM reports an empty metric. */
    public static final LatencyStats EMPTY = new LatencyStats(0, 0, 0, 0, 0, 0);

    /** Significant decimal digits the histograms keep. */
    static final int SIGNIFICANT_DIGITS = 3;

    private static final double MICROS_PER_MILLI = 1000.0;

    /** An empty, auto-resizing histogram of microseconds for {@link #of(Histogram)}. */
    static Histogram newHistogram() {
        return new Histogram(SIGNIFICANT_DIGITS);
    }

    /** Records a duration given in nanoseconds, rounded to the microsecond. */
    static void recordNanos(Histogram micros, double nanos) {
        micros.recordValue(Math.max(0, Math.round(nanos / 1000.0)));
    }

    /** The summary of a histogram of microseconds. */
    static LatencyStats of(Histogram micros) {
        if (micros.getTotalCount() == 0) {
            return EMPTY;
        }
        return new LatencyStats(micros.getTotalCount(),
                micros.getMean() / MICROS_PER_MILLI,
                micros.getStdDeviation() / MICROS_PER_MILLI,
                micros.getValueAtPercentile(50) / MICROS_PER_MILLI,
                micros.getValueAtPercentile(90) / MICROS_PER_MILLI,
                micros.getValueAtPercentile(99) / MICROS_PER_MILLI);
    }
}
