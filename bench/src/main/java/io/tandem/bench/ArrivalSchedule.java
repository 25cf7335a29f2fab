package io.tandem.bench;

import java.util.random.RandomGenerator;

/**
 * When each request of a benchmark is sent, as offsets in nanoseconds from the start. A Poisson
 * process at {@code rate} requests/s, as {@code vllm bench serve} (burstiness 1): the first request
 * at 0, then gaps drawn from the exponential distribution with mean {@code 1/rate}. Rate
 * {@code inf} sends everything at once (all offsets 0). Trace arrivals come from
 * {@link MooncakeTrace#arrivalOffsetsNanos()}.
 */
public final class ArrivalSchedule {

    /** Rate that sends every request at time 0. */
    public static final double INFINITE_RATE = Double.POSITIVE_INFINITY;

    private static final double NANOS_PER_SECOND = 1e9;

    private ArrivalSchedule() {}

    /**
     * Arrival offsets of {@code count} requests of a Poisson process.
     *
     * @param rate requests per second, {@code > 0}, or {@link #INFINITE_RATE}
     * @param rng  draws the gaps; the same state gives the same schedule
     * @return non-decreasing offsets in nanoseconds, the first 0
     * @throws IllegalArgumentException when {@code rate} is not positive
     */
    public static long[] poisson(double rate, int count, RandomGenerator rng) {
        if (!(rate > 0)) {
            throw new IllegalArgumentException("request rate must be > 0 or inf, got " + rate);
        }
        long[] offsets = new long[count];
        if (rate == INFINITE_RATE) {
            return offsets;
        }
        double seconds = 0;
        for (int i = 1; i < count; i++) {
            seconds += rng.nextExponential() / rate;
            offsets[i] = Math.round(seconds * NANOS_PER_SECOND);
        }
        return offsets;
    }

    /**
     * Parses a request rate: {@code inf} or a positive number of requests per second.
     *
     * @throws IllegalArgumentException for anything else
     */
    public static double parseRate(String text) {
        if (text.strip().equalsIgnoreCase("inf")) {
            return INFINITE_RATE;
        }
        double rate;
        try {
            rate = Double.parseDouble(text.strip());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("request rate must be a positive number or inf, got '" + text + "'", e);
        }
        if (!(rate > 0) || Double.isNaN(rate)) {
            throw new IllegalArgumentException("request rate must be a positive number or inf, got '" + text + "'");
        }
        return rate;
    }
}
