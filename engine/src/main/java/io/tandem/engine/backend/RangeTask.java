package io.tandem.engine.backend;

/** A slice of a parallel loop: items {@code [from, to)}, run by worker {@code thread} (0 = caller). */
@FunctionalInterface
public interface RangeTask {
    void run(int from, int to, int thread);
}
