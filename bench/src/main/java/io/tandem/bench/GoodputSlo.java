package io.tandem.bench;

import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Per-request service-level objectives for goodput ({@code --goodput ttft:MS tpot:MS e2el:MS}, as
 * vLLM's): a request is good when it meets every objective given, where meeting means
 * {@code value <= objective}. Objectives not given are {@code +∞}. A request with one output token
 * has TPOT 0 and meets any TPOT objective (vLLM's rule).
 *
 * @param ttftMs time to first token, milliseconds
 * @param tpotMs time per output token, milliseconds
 * @param e2elMs end-to-end latency, milliseconds
 */
public record GoodputSlo(double ttftMs, double tpotMs, double e2elMs) {

    /** No objectives: goodput is not reported. */
    public static final GoodputSlo NONE = new GoodputSlo(Double.POSITIVE_INFINITY, Double.POSITIVE_INFINITY, Double.POSITIVE_INFINITY);

    private static final double NANOS_PER_MILLI = 1e6;
    private static final List<String> KEYS = List.of("ttft", "tpot", "e2el");

    public GoodputSlo {
        for (double value : new double[] {ttftMs, tpotMs, e2elMs}) {
            if (!(value >= 0)) {
                throw new IllegalArgumentException("goodput objectives must be >= 0 ms, got " + value);
            }
        }
    }

    /**
     * Parses {@code KEY:MS} items, keys {@code ttft}, {@code tpot}, {@code e2el}.
     *
     * @throws IllegalArgumentException naming the item that is malformed, repeated or has an unknown key
     */
    public static GoodputSlo parse(List<String> items) {
        Map<String, Double> objectives = new HashMap<>();
        for (String item : items) {
            int colon = item.indexOf(':');
            if (colon < 0) {
                throw new IllegalArgumentException("goodput objective must be KEY:MS, got '" + item + "'");
            }
            String key = item.substring(0, colon).strip().toLowerCase(Locale.ROOT);
            if (!KEYS.contains(key)) {
                throw new IllegalArgumentException("goodput objective '" + item + "' has an unknown key; valid keys are ttft, tpot, e2el");
            }
            double ms;
            try {
                ms = Double.parseDouble(item.substring(colon + 1).strip());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("goodput objective '" + item + "' needs a number of milliseconds", e);
            }
            if (!(ms >= 0) || Double.isInfinite(ms)) {
                throw new IllegalArgumentException("goodput objective '" + item + "' must be a finite number >= 0");
            }
            if (objectives.put(key, ms) != null) {
                throw new IllegalArgumentException("goodput objective '" + key + "' is given twice");
            }
        }
        double none = Double.POSITIVE_INFINITY;
        return new GoodputSlo(objectives.getOrDefault("ttft", none), objectives.getOrDefault("tpot", none),
                objectives.getOrDefault("e2el", none));
    }

    /** Whether any objective was given. */
    public boolean isSet() {
        return !Double.isInfinite(ttftMs) || !Double.isInfinite(tpotMs) || !Double.isInfinite(e2elMs);
    }

    /** Whether {@code request} meets every objective. */
    public boolean isMetBy(RequestResult.Success request) {
        return request.ttftNanos() / NANOS_PER_MILLI <= ttftMs
                && request.tpotNanos() / NANOS_PER_MILLI <= tpotMs
                && request.e2elNanos() / NANOS_PER_MILLI <= e2elMs;
    }
}
