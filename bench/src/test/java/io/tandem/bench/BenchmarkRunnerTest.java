package io.tandem.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(30)
class BenchmarkRunnerTest {

    private static final long MS = TimeUnit.MILLISECONDS.toNanos(1);

    private static List<SampleRequest> requests(int count) {
        return IntStream.range(0, count)
                .mapToObj(i -> new SampleRequest(new Prompt.TokenIds(new int[] {i + 1}), 1, i + 1))
                .toList();
    }

    private static ProgressLine progress(StringWriter log, int total) {
        return new ProgressLine(new PrintWriter(log), false, total);
    }

    /** A backend answering at once with a success whose output length is the request's. */
    private static class InstantBackend implements Backend {
        @Override
        public List<String> listModels() {
            return List.of("m");
        }

        @Override
        public RequestResult send(String model, SampleRequest request) throws InterruptedException {
            return new RequestResult.Success(1, request.expectedOutputLen(), 0, 0, new long[0]);
        }

        @Override
        public void close() {}
    }

    @Test
    void shouldReturnOneResultPerRequestInRequestOrder() throws Exception {
        StringWriter log = new StringWriter();
        BenchmarkRunner.Run run = BenchmarkRunner.run(new InstantBackend(), "m", requests(50), new long[50],
                BenchmarkRunner.UNLIMITED_CONCURRENCY, progress(log, 50));

        assertThat(run.results()).extracting(r -> ((RequestResult.Success) r).outputTokens())
                .containsExactlyElementsOf(IntStream.rangeClosed(1, 50).boxed().toList());
        assertThat(run.durationNanos()).isPositive();
        assertThat(log.toString()).startsWith("bench: 50/50 requests, ");
    }

    @Test
    void shouldSendEachRequestNoEarlierThanItsArrivalTime() throws Exception {
        long[] offsets = {0, 100 * MS, 250 * MS};
        List<Long> sentAt = Collections.synchronizedList(new java.util.ArrayList<>());
        long start = System.nanoTime();
        BenchmarkRunner.Run run = BenchmarkRunner.run(new InstantBackend() {
            @Override
            public RequestResult send(String model, SampleRequest request) throws InterruptedException {
                sentAt.add(System.nanoTime() - start);
                return super.send(model, request);
            }
        }, "m", requests(3), offsets, BenchmarkRunner.UNLIMITED_CONCURRENCY, progress(new StringWriter(), 3));

        assertThat(sentAt).hasSize(3);
        Collections.sort(sentAt);
        for (int i = 0; i < 3; i++) {
            assertThat(sentAt.get(i)).isGreaterThanOrEqualTo(offsets[i]);
        }
        assertThat(run.durationNanos()).isGreaterThanOrEqualTo(250 * MS);
    }

    @Test
    void shouldKeepExactlyMaxConcurrencyRequestsInFlight() throws Exception {
        // Every request waits at a barrier of two: with a limit of one it would time out, with more
        // than two in flight the counter would exceed two.
        CyclicBarrier pairs = new CyclicBarrier(2);
        AtomicInteger inFlight = new AtomicInteger();
        AtomicInteger maxInFlight = new AtomicInteger();
        Backend paired = new InstantBackend() {
            @Override
            public RequestResult send(String model, SampleRequest request) throws InterruptedException {
                maxInFlight.accumulateAndGet(inFlight.incrementAndGet(), Math::max);
                try {
                    pairs.await(5, TimeUnit.SECONDS);
                    Thread.sleep(5);
                    return super.send(model, request);
                } catch (BrokenBarrierException | TimeoutException e) {
                    return new RequestResult.Failure("no partner: " + e);
                } finally {
                    inFlight.decrementAndGet();
                }
            }
        };

        BenchmarkRunner.Run run = BenchmarkRunner.run(paired, "m", requests(20), new long[20], 2, progress(new StringWriter(), 20));

        assertThat(run.results()).allSatisfy(r -> assertThat(r).isInstanceOf(RequestResult.Success.class));
        assertThat(maxInFlight.get()).isEqualTo(2);
    }

    @Test
    void shouldSendAWaitingRequestOnlyWhenAPermitFreesUp() throws Exception {
        // With one permit and three requests of 100 ms each arriving at once, the last one reaches
        // the backend (where its TTFT/E2E clock starts) only after the first two ended.
        ConcurrentHashMap<Integer, Long> sendTimes = new ConcurrentHashMap<>();
        long start = System.nanoTime();
        BenchmarkRunner.run(new InstantBackend() {
            @Override
            public RequestResult send(String model, SampleRequest request) throws InterruptedException {
                sendTimes.put(request.expectedOutputLen(), System.nanoTime() - start);
                Thread.sleep(100);
                return super.send(model, request);
            }
        }, "m", requests(3), new long[3], 1, progress(new StringWriter(), 3));

        assertThat(sendTimes.values().stream().mapToLong(Long::longValue).max().orElseThrow()).isGreaterThanOrEqualTo(200 * MS);
    }
}
