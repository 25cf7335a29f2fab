package io.tandem.app;

import java.io.IOException;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A disaggregated deployment on loopback, each role its own JVM: {@code tandem prefill} ×
 * {@code numPrefill}, {@code tandem decode} × {@code numDecode} (started in parallel, on free
 * ports), then {@code tandem router} in front of them. Closed in reverse: router, then workers.
 */
final class LocalCluster implements AutoCloseable {
    static final Pattern PREFILL_READY = Pattern.compile(
            "tandem: prefill worker (\\S+) serving grpc (\\S+):(\\d+) kv (\\S+):(\\d+) metrics http://(\\S+):(\\d+)");
    static final Pattern DECODE_READY = Pattern.compile(
            "tandem: decode worker (\\S+) serving grpc (\\S+):(\\d+) metrics http://(\\S+):(\\d+)");
    private static final Duration START_TIMEOUT = Duration.ofSeconds(60);

    final List<TandemProcess> prefill = new ArrayList<>();
    final List<TandemProcess> decode = new ArrayList<>();
    TandemProcess router;

    /**
     * @param commonArgs options every role gets (model, threads, …)
     * @throws AssertionError quoting a role's stderr if it does not start; what started is stopped
     */
    static LocalCluster start(int numPrefill, int numDecode, String... commonArgs) throws IOException, InterruptedException {
        LocalCluster cluster = new LocalCluster();
        try {
            List<CompletableFuture<TandemProcess>> prefills = new ArrayList<>();
            List<CompletableFuture<TandemProcess>> decodes = new ArrayList<>();
            for (int i = 0; i < numPrefill; i++) {
                prefills.add(startAsync(PREFILL_READY, "prefill", commonArgs, "--worker-id", "prefill-" + i,
                        "--grpc-port", "0", "--kv-port", "0", "--metrics-port", "0"));
            }
            for (int i = 0; i < numDecode; i++) {
                decodes.add(startAsync(DECODE_READY, "decode", commonArgs, "--worker-id", "decode-" + i,
                        "--grpc-port", "0", "--metrics-port", "0"));
            }
            collect(prefills, cluster.prefill);
            collect(decodes, cluster.decode);
            cluster.router = TandemProcess.start(START_TIMEOUT, Pattern.compile(
                    "tandem: serving on http://(\\S+):(\\d+) \\(OpenAI\\) and grpc (\\S+):(\\d+)"), Stream.concat(
                    Stream.of("router", "--prefill", grpcTargets(cluster.prefill), "--decode", grpcTargets(cluster.decode),
                            "--http-port", "0", "--grpc-port", "0"), modelArgs(commonArgs)).toArray(String[]::new));
        } catch (Throwable e) {
            cluster.close();
            throw e;
        }
        return cluster;
    }

    private static CompletableFuture<TandemProcess> startAsync(Pattern ready, String role, String[] common, String... args) {
        return CompletableFuture.supplyAsync(() -> {
            try {
                return TandemProcess.start(START_TIMEOUT, ready,
                        Stream.concat(Stream.concat(Stream.of(role), Stream.of(common)), Stream.of(args)).toArray(String[]::new));
            } catch (IOException e) {
                throw new CompletionException(e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new CompletionException(e);
            }
        });
    }

    /** Waits for every start, keeping each that succeeded (so close() stops it) before rethrowing the first failure. */
    private static void collect(List<CompletableFuture<TandemProcess>> starts, List<TandemProcess> into) {
        Throwable failure = null;
        for (CompletableFuture<TandemProcess> start : starts) {
            try {
                into.add(start.join());
            } catch (CompletionException e) {
                failure = failure == null ? e.getCause() : failure;
            }
        }
        if (failure instanceof Error error) {
            throw error;
        }
        if (failure != null) {
            throw new AssertionError(failure);
        }
    }

    /** The router takes the model options only (it runs no engine). */
    private static Stream<String> modelArgs(String[] common) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i + 1 < common.length; i += 2) {
            if (List.of("--model", "--load-format", "--arch", "--dtype", "--seed", "--max-model-len").contains(common[i])) {
                out.add(common[i]);
                out.add(common[i + 1]);
            }
        }
        return out.stream();
    }

    private static String grpcTargets(List<TandemProcess> workers) {
        return String.join(",", workers.stream().map(w -> w.readyLine().group(2) + ":" + w.readyLine().group(3)).toList());
    }

    /** The worker's id, from its ready line. */
    static String workerId(TandemProcess worker) {
        return worker.readyLine().group(1);
    }

    /** The worker's gRPC port. */
    static int grpcPort(TandemProcess worker) {
        return Integer.parseInt(worker.readyLine().group(3));
    }

    /** The worker's {@code /metrics} URI (the last two groups of either ready line). */
    static URI metrics(TandemProcess worker) {
        Matcher m = worker.readyLine();
        return URI.create("http://" + m.group(m.groupCount() - 1) + ":" + m.group(m.groupCount()) + "/metrics");
    }

    /** Every role, router first. */
    List<TandemProcess> all() {
        List<TandemProcess> out = new ArrayList<>();
        if (router != null) {
            out.add(router);
        }
        out.addAll(decode);
        out.addAll(prefill);
        return out;
    }

    @Override
    public void close() {
        all().forEach(TandemProcess::close);
    }
}
