package io.tandem.bench;

import java.io.PrintWriter;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * The progress report on stderr: {@code completed/total requests (failed), elapsed, req/s}. On a
 * terminal one line is redrawn in place with {@code \r}, at most four times a second; elsewhere (CI
 * logs) a line is printed at most every ten seconds. {@link #finish()} always prints the final line.
 * Called from many request threads at once.
 */
final class ProgressLine {

    private static final long TERMINAL_INTERVAL_NANOS = TimeUnit.MILLISECONDS.toNanos(250);
    private static final long LOG_INTERVAL_NANOS = TimeUnit.SECONDS.toNanos(10);

    private final PrintWriter err;
    private final boolean terminal;
    private final int total;
    private long startNanos;
    private long lastPrintNanos;
    private int done;
    private int failed;
    private int lastLength;

    /**
     * @param terminal whether {@code err} is a terminal (redraw in place) or a log
     * @param total    requests the run will send
     */
    ProgressLine(PrintWriter err, boolean terminal, int total) {
        this.err = err;
        this.terminal = terminal;
        this.total = total;
    }

    /** The benchmark clock started at {@code nowNanos}. */
    synchronized void start(long nowNanos) {
        startNanos = nowNanos;
        lastPrintNanos = nowNanos;
    }

    /** One request ended. */
    synchronized void onRequestDone(RequestResult result) {
        done++;
        if (result instanceof RequestResult.Failure) {
            failed++;
        }
        long now = System.nanoTime();
        if (now - lastPrintNanos >= (terminal ? TERMINAL_INTERVAL_NANOS : LOG_INTERVAL_NANOS)) {
            lastPrintNanos = now;
            print(line(now), false);
        }
    }

    /** Prints the final line and ends it. */
    synchronized void finish() {
        print(line(System.nanoTime()), true);
    }

    private String line(long now) {
        double seconds = (now - startNanos) / 1e9;
        return String.format(Locale.ROOT, "bench: %d/%d requests%s, %.1f s, %.2f req/s", done, total,
                failed == 0 ? "" : " (" + failed + " failed)", seconds, seconds > 0 ? done / seconds : 0.0);
    }

    private void print(String line, boolean last) {
        if (terminal) {
            // Pad over the previous, possibly longer, line.
            err.print("\r" + line + " ".repeat(Math.max(0, lastLength - line.length())));
            lastLength = line.length();
            if (last) {
                err.println();
            }
        } else {
            err.println(line);
        }
        err.flush();
    }
}
