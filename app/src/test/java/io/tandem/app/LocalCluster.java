package io.tandem.app;

import java.io.IOException;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executor;
import java.util.concurrent.Executors;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A disaggregated deployment on loopback, each role its own JVM: {@code tandem prefill} ×
 * {@code numPrefill} and {@code tandem decode} × {@code numDecode} (started in parallel, on free
 * ports), then one or more {@code tandem router}s, each in front of some of them, so that several
 * pool shapes share the same worker processes. Closed in reverse: routers, then workers.
 */
final class LocalCluster implements AutoCloseable {
    static final Pattern PREFILL_READY = Pattern.compile(
            "tandem: prefill worker (\\S+) serving grpc (\\S+):(\\d+) kv (\\S+):(\\d+) metrics http://(\\S+):(\\d+)");
    static final Pattern DECODE_READY = Pattern.compile(
            "tandem: decode worker (\\S+) serving grpc (\\S+):(\\d+) metrics http://(\\S+):(\\d+)");
    static final Pattern ROUTER_READY = Pattern.compile(
            "tandem: serving on http://(\\S+):(\\d+) \\(OpenAI\\) and grpc (\\S+):(\\d+)");
    private static final Duration START_TIMEOUT = Duration.ofSeconds(60);
    /** Starts and stops wait on child processes: a thread each, however many cores. */
    private static final Executor WAITS = Executors.newVirtualThreadPerTaskExecutor();

    final List<TandemProcess> prefill = new ArrayList<>();
    final List<TandemProcess> decode = new ArrayList<>();
    final List<TandemProcess> routers = new ArrayList<>();
    private final String[] commonArgs;
    private String[] prefillArgs = new String[0];

    private LocalCluster(String[] commonArgs) {
        this.commonArgs = commonArgs;
    }

    /**
     * Starts the workers (no router yet: see {@link #startRouters}).
     *
     * @param commonArgs options every worker gets (model, threads, …); routers get the model options among them
     * @throws AssertionError quoting a role's stderr if it does not start; what started is stopped
     */
    static LocalCluster start(int numPrefill, int numDecode, String... commonArgs) {
        return start(numPrefill, numDecode, commonArgs, new String[0], new String[0]);
    }

    /**
     * Starts the workers, each role with options of its own besides the common ones.
     *
     * @param prefillArgs options only prefill workers take ({@code --lease-timeout}, …)
     * @param decodeArgs  options only decode workers take ({@code --kv-transfer-timeout}, …)
     */
    static LocalCluster start(int numPrefill, int numDecode, String[] commonArgs, String[] prefillArgs,
                              String[] decodeArgs) {
        LocalCluster cluster = new LocalCluster(commonArgs);
        cluster.prefillArgs = prefillArgs;
        try {
            List<CompletableFuture<TandemProcess>> prefills = new ArrayList<>();
            List<CompletableFuture<TandemProcess>> decodes = new ArrayList<>();
            for (int i = 0; i < numPrefill; i++) {
                prefills.add(startAsync(PREFILL_READY, "prefill", concat(commonArgs, prefillArgs), "--worker-id", "prefill-" + i,
                        "--grpc-port", "0", "--kv-port", "0", "--metrics-port", "0"));
            }
            for (int i = 0; i < numDecode; i++) {
                decodes.add(startAsync(DECODE_READY, "decode", concat(commonArgs, decodeArgs), "--worker-id", "decode-" + i,
                        "--grpc-port", "0", "--metrics-port", "0"));
            }
            collect(prefills, cluster.prefill);
            collect(decodes, cluster.decode);
        } catch (Throwable e) {
            cluster.close();
            throw e;
        }
        return cluster;
    }

    /**
     * Starts one router per shape, in parallel: {@code {p, d}} puts a router in front of the first
     * {@code p} prefill and the first {@code d} decode workers.
     *
     * @return the routers, in the order of the shapes
     */
    List<TandemProcess> startRouters(int[]... shapes) {
        List<CompletableFuture<TandemProcess>> starts = new ArrayList<>();
        for (int[] shape : shapes) {
            starts.add(startAsync(ROUTER_READY, "router", new String[0], routerArgs(shape[0], shape[1])));
        }
        List<TandemProcess> started = new ArrayList<>();
        try {
            collect(starts, started);
        } finally {
            routers.addAll(started);
        }
        return started;
    }

    /**
     * Starts one router in front of the first {@code numPrefill} prefill and {@code numDecode}
     * decode workers, with more router options (e.g. {@code --routing-policy}, {@code --max-in-flight}).
     */
    TandemProcess startRouter(int numPrefill, int numDecode, String... routerOptions) {
        String[] args = Stream.concat(Stream.of(routerArgs(numPrefill, numDecode)), Stream.of(routerOptions))
                .toArray(String[]::new);
        List<TandemProcess> started = new ArrayList<>();
        try {
            collect(List.of(startAsync(ROUTER_READY, "router", new String[0], args)), started);
        } finally {
            routers.addAll(started);
        }
        return started.getFirst();
    }

    /**
     * Starts prefill worker {@code i} again, after it died or was killed, with the same id and on the
     * same gRPC, KV and metrics ports, so that routers and handles find it where it was.
     *
     * @return the new process (also put in {@link #prefill} in place of the old one)
     */
    TandemProcess restartPrefill(int i) {
        Matcher old = prefill.get(i).readyLine();
        if (prefill.get(i).isAlive()) {
            throw new IllegalStateException("prefill worker " + old.group(1) + " still runs");
        }
        List<TandemProcess> started = new ArrayList<>();
        collect(List.of(startAsync(PREFILL_READY, "prefill", concat(commonArgs, prefillArgs), "--worker-id", old.group(1),
                "--grpc-port", old.group(3), "--kv-port", old.group(5), "--metrics-port", old.group(7))), started);
        prefill.get(i).close(); // dead already; this drops its kill-on-exit hook
        prefill.set(i, started.getFirst());
        return started.getFirst();
    }

    private static String[] concat(String[] a, String[] b) {
        return Stream.concat(Stream.of(a), Stream.of(b)).toArray(String[]::new);
    }

    private String[] routerArgs(int numPrefill, int numDecode) {
        return Stream.concat(Stream.of("--prefill", grpcTargets(prefill.subList(0, numPrefill)),
                "--decode", grpcTargets(decode.subList(0, numDecode)), "--http-port", "0", "--grpc-port", "0"),
                modelArgs(commonArgs)).toArray(String[]::new);
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
        }, WAITS);
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

    /** Stops every router, then every worker: SIGTERM to each group at once, then waits (see {@link TandemProcess#close()}). */
    @Override
    public void close() {
        closeAll(routers);
        closeAll(decode);
        closeAll(prefill);
    }

    private static void closeAll(List<TandemProcess> processes) {
        CompletableFuture.allOf(processes.stream().map(p -> CompletableFuture.runAsync(p::close, WAITS))
                .toArray(CompletableFuture[]::new)).join();
    }
}
