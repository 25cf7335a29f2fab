package io.tandem.app;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A {@code tandem} command run from the built jar ({@code -Dtandem.jar}) in a child JVM: the java
 * of the test JVM with the flags {@code bin/tandem} passes. A server process ({@code serve},
 * {@code router}, {@code prefill}, {@code decode}) is waited for until it prints its ready line and
 * is killed on {@link #close()} or, should the test JVM die first, by a shutdown hook. Stderr goes
 * to a log file under {@code target/}, so the child never blocks on a full pipe and a failure can
 * quote it.
 */
final class TandemProcess implements AutoCloseable {

    /** The line {@code tandem serve} prints once both servers listen. */
    private static final Pattern READY = Pattern.compile(
            "tandem: serving on http://(\\S+):(\\d+) \\(OpenAI\\) and grpc (\\S+):(\\d+)");
    private static final Duration STOP_GRACE = Duration.ofSeconds(10);

    private final Process process;
    private final Path stderrLog;
    private final Thread killOnExit;
    private Matcher readyLine;
    private String host;
    private int httpPort;
    private int grpcPort;

    private TandemProcess(Process process, Path stderrLog) {
        this.process = process;
        this.stderrLog = stderrLog;
        this.killOnExit = new Thread(process::destroyForcibly, "kill-" + process.pid());
        Runtime.getRuntime().addShutdownHook(killOnExit);
    }

    /** {@code java <bin/tandem's flags> -jar tandem.jar args…}. */
    static List<String> command(String... args) {
        return command(List.of(), args);
    }

    /**
     * {@code java <bin/tandem's flags> jvmOptions… -jar tandem.jar args…} (what {@code bin/tandem}
     * runs with {@code TANDEM_JAVA_OPTS}).
     */
    static List<String> command(List<String> jvmOptions, String... args) {
        String java = ProcessHandle.current().info().command().orElseThrow(
                () -> new IllegalStateException("cannot tell which java runs this test"));
        String jar = System.getProperty("tandem.jar");
        if (jar == null || !Files.isRegularFile(Path.of(jar))) {
            throw new IllegalStateException("-Dtandem.jar must name the built tandem.jar (failsafe sets it), got " + jar);
        }
        List<String> command = new ArrayList<>(List.of(java,
                "--add-modules", "jdk.incubator.vector",
                "--enable-native-access=ALL-UNNAMED",
                "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED",
                "-XX:+UseParallelGC"));
        command.addAll(jvmOptions);
        command.addAll(List.of("-jar", jar));
        command.addAll(List.of(args));
        return command;
    }

    /**
     * Starts {@code tandem serve args…} and waits for its ready line.
     *
     * @throws AssertionError quoting the child's stderr if it exits or is not ready within {@code timeout}
     */
    static TandemProcess serve(Duration timeout, String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of("serve"));
        command.addAll(List.of(args));
        return start(timeout, READY, command.toArray(String[]::new));
    }

    /**
     * Starts {@code tandem args…} and waits for a stdout line matching {@code ready} (see {@link #readyLine()}).
     * A line matching serve's ready line also sets {@link #host()}, {@link #httpPort()}, {@link #grpcPort()}.
     *
     * @throws AssertionError quoting the child's stderr if it exits or is not ready within {@code timeout}
     */
    static TandemProcess start(Duration timeout, Pattern ready, String... args) throws IOException, InterruptedException {
        return start(timeout, ready, List.of(), args);
    }

    /** As {@link #start(Duration, Pattern, String...)}, the child JVM run with {@code jvmOptions} too ({@code -Dname=value}, …). */
    static TandemProcess start(Duration timeout, Pattern ready, List<String> jvmOptions, String... args)
            throws IOException, InterruptedException {
        Path log = Files.createDirectories(Path.of("target")).resolve("tandem-" + args[0] + "-"
                + ProcessHandle.current().pid() + "-" + System.nanoTime() + ".log");
        Process process = new ProcessBuilder(command(jvmOptions, args))
                .redirectErrorStream(false)
                .redirectError(log.toFile())
                .start();
        TandemProcess tandem = new TandemProcess(process, log);
        try {
            tandem.awaitReady(timeout, ready, args[0]);
        } catch (Throwable e) {
            tandem.close();
            throw e;
        }
        return tandem;
    }

    private void awaitReady(Duration timeout, Pattern ready, String name) throws InterruptedException {
        CompletableFuture<String> readyLine = new CompletableFuture<>();
        // The reader goes on draining stdout until the child exits.
        Thread.ofPlatform().daemon().name("tandem-stdout-" + process.pid()).start(() -> {
            try (BufferedReader out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = out.readLine()) != null; ) {
                    if (ready.matcher(line).matches()) {
                        readyLine.complete(line);
                    }
                }
                readyLine.completeExceptionally(new AssertionError("tandem " + name + " closed stdout without the ready line"));
            } catch (IOException e) {
                readyLine.completeExceptionally(e);
            }
        });
        process.onExit().thenRun(() -> readyLine.completeExceptionally(
                new AssertionError("tandem " + name + " exited with " + process.exitValue() + " before it was ready")));
        String line;
        try {
            line = readyLine.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw new AssertionError("tandem " + name + " printed no ready line in " + timeout + "; stderr:\n" + stderr());
        } catch (ExecutionException e) {
            throw new AssertionError(e.getCause().getMessage() + "; stderr:\n" + stderr(), e.getCause());
        }
        Matcher m = ready.matcher(line);
        if (!m.matches()) {
            throw new IllegalStateException(line);
        }
        this.readyLine = m;
        Matcher serving = READY.matcher(line);
        if (serving.matches()) {
            host = serving.group(1);
            httpPort = Integer.parseInt(serving.group(2));
            grpcPort = Integer.parseInt(serving.group(4));
        }
    }

    /** The ready line, matched by the pattern it was started with (its groups hold the ports). */
    Matcher readyLine() {
        return readyLine;
    }

    /** Runs {@code tandem args…} to its end; a process that outlives {@code timeout} is killed. */
    static Result run(Duration timeout, String... args) throws IOException, InterruptedException {
        Process process = new ProcessBuilder(command(args)).redirectErrorStream(true).start();
        CompletableFuture<String> output = CompletableFuture.supplyAsync(() -> {
            try {
                return new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
        try {
            if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                throw new AssertionError("tandem " + String.join(" ", args) + " did not exit within " + timeout);
            }
            return new Result(process.exitValue(), output.join());
        } finally {
            process.destroyForcibly();
        }
    }

    /** Exit status and stdout + stderr of a finished command. */
    record Result(int exitCode, String output) {}

    String host() {
        return host;
    }

    int httpPort() {
        return httpPort;
    }

    int grpcPort() {
        return grpcPort;
    }

    /** The child's process id. */
    long pid() {
        return process.pid();
    }

    /** Whether the child is still running. */
    boolean isAlive() {
        return process.isAlive();
    }

    /**
     * {@code kill -9}: SIGKILL, no shutdown hook runs, sockets are closed by the kernel; waits for the
     * exit.
     *
     * @throws AssertionError if it has not exited after {@link #STOP_GRACE}
     */
    void kill() throws InterruptedException {
        process.destroyForcibly();
        if (!process.waitFor(STOP_GRACE.toMillis(), TimeUnit.MILLISECONDS)) {
            throw new AssertionError("tandem process " + process.pid() + " still runs " + STOP_GRACE + " after SIGKILL");
        }
    }

    /** What the child wrote to stderr so far. */
    String stderr() {
        try {
            return Files.readString(stderrLog);
        } catch (IOException e) {
            return "(stderr log " + stderrLog + " unreadable: " + e + ")";
        }
    }

    /** SIGTERM (graceful shutdown), then SIGKILL if it is still alive after {@link #STOP_GRACE}; waits for the exit. Idempotent. */
    @Override
    public void close() {
        try {
            process.destroy();
            if (!process.waitFor(STOP_GRACE.toMillis(), TimeUnit.MILLISECONDS)) {
                process.destroyForcibly().waitFor(STOP_GRACE.toMillis(), TimeUnit.MILLISECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            process.destroyForcibly();
            try {
                Runtime.getRuntime().removeShutdownHook(killOnExit);
            } catch (IllegalStateException shuttingDown) {
                // The JVM is exiting and runs the hook anyway.
            }
        }
    }
}
