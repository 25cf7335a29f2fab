package io.tandem.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;

/**
 * Sends a benchmark's requests at their arrival times and collects the results, as
 * {@code vllm bench serve}'s main loop: each request starts on its own virtual thread at its
 * arrival offset; with a concurrency limit it then waits for one of the permits, and its clock
 * (TTFT, E2E) starts only once it holds one, while the arrival schedule itself is kept. The run
 * ends when every request ended; each backend bounds a request by its timeout.
 */
public final class BenchmarkRunner {

    /** {@code maxConcurrency} meaning no limit. */
    public static final int UNLIMITED_CONCURRENCY = 0;

    private BenchmarkRunner() {}

    /**
     * What a run produced.
     *
     * @param results       one per request, in request order
     * @param durationNanos first send → last request ended (vLLM's benchmark duration)
     */
    public record Run(List<RequestResult> results, long durationNanos) {}

    /**
     * @param arrivalOffsetsNanos per request, nanoseconds after the start; non-decreasing
     * @param maxConcurrency      requests in flight at most, or {@link #UNLIMITED_CONCURRENCY}
     * @throws InterruptedException when interrupted; requests in flight are cancelled
     */
    static Run run(Backend backend, String model, List<SampleRequest> requests, long[] arrivalOffsetsNanos,
            int maxConcurrency, ProgressLine progress) throws InterruptedException {
        if (arrivalOffsetsNanos.length != requests.size()) {
            throw new IllegalArgumentException(requests.size() + " requests but " + arrivalOffsetsNanos.length + " arrival times");
        }
        Semaphore permits = maxConcurrency == UNLIMITED_CONCURRENCY ? null : new Semaphore(maxConcurrency);
        List<Future<RequestResult>> futures = new ArrayList<>(requests.size());
        long start = System.nanoTime();
        progress.start(start);
        try (ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor()) {
            try {
                for (int i = 0; i < requests.size(); i++) {
                    sleepUntil(start + arrivalOffsetsNanos[i]);
                    SampleRequest request = requests.get(i);
                    futures.add(executor.submit(() -> {
                        RequestResult result = send(backend, model, request, permits);
                        progress.onRequestDone(result);
                        return result;
                    }));
                }
            } catch (InterruptedException e) {
                executor.shutdownNow();
                throw e;
            }
        }
        long duration = System.nanoTime() - start;
        progress.finish();
        List<RequestResult> results = new ArrayList<>(futures.size());
        for (Future<RequestResult> future : futures) {
            try {
                results.add(future.get());
            } catch (ExecutionException e) {
                // Backends return failures; an exception here is a bug in the benchmark itself.
                throw new IllegalStateException("a request thread failed", e.getCause());
            }
        }
        return new Run(List.copyOf(results), duration);
    }

    private static RequestResult send(Backend backend, String model, SampleRequest request, Semaphore permits)
            throws InterruptedException {
        if (permits == null) {
            return backend.send(model, request);
        }
        permits.acquire();
        try {
            return backend.send(model, request);
        } finally {
            permits.release();
        }
    }

    private static void sleepUntil(long deadlineNanos) throws InterruptedException {
        long remaining;
        while ((remaining = deadlineNanos - System.nanoTime()) > 0) {
            Thread.sleep(remaining / 1_000_000, (int) (remaining % 1_000_000));
        }
    }
}
