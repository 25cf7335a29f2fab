package io.tandem.app;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.tandem.engine.ReferenceModel;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code deploy/local/cluster.sh}: starts a 1P1D cluster that answers a completion, and {@code
 * cluster.sh stop} leaves no process behind (the workers, the router, the foreground script).
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ClusterScriptIT {
    private static final Pattern READY = Pattern.compile(
            "tandem cluster: 1 prefill \\+ 1 decode workers; router OpenAI (http://\\S+) grpc (\\S+); run dir (.+)");
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path runDir;

    @Test
    void shouldStartAClusterThatAnswersACompletionAndStopEveryProcessOfIt() throws Exception {
        Process cluster = script("1", "1", "--model", ReferenceModel.ggufPath().toAbsolutePath().toString(),
                "--threads", "1", "--kv-cache-memory", "64");
        try {
            Matcher ready = awaitReady(cluster, Duration.ofSeconds(90));
            assertThat(Path.of(ready.group(3))).isEqualTo(runDir);
            List<Long> pids = Files.readAllLines(runDir.resolve("pids")).stream()
                    .map(line -> Long.parseLong(line.split(" ")[2])).toList();
            assertThat(pids).hasSize(3);
            assertThat(Files.readString(runDir.resolve("endpoints"))).contains("http " + ready.group(1), "grpc " + ready.group(2));

            ReferenceModel.Case c = ReferenceModel.cases().get(1);
            assertThat(complete(URI.create(ready.group(1) + "/v1/completions"), c)).isEqualTo(ReferenceContinuations.text(c));

            Process stop = script("stop");
            assertThat(stop.waitFor(60, TimeUnit.SECONDS)).as("cluster.sh stop returns").isTrue();
            assertThat(stop.exitValue()).as(new String(stop.getErrorStream().readAllBytes(), StandardCharsets.UTF_8)).isZero();
            assertThat(cluster.waitFor(10, TimeUnit.SECONDS)).as("the foreground cluster.sh ends").isTrue();
            assertThat(cluster.exitValue()).as(stderr()).isZero();
            for (long pid : pids) {
                assertThat(ProcessHandle.of(pid).filter(ProcessHandle::isAlive)).as("pid %d", pid).isEmpty();
            }
            assertThat(runDir.resolve("pids")).doesNotExist();
        } finally {
            if (cluster.isAlive()) {
                script("stop").waitFor(60, TimeUnit.SECONDS);
                cluster.destroyForcibly();
            }
        }
    }

    /** {@code deploy/local/cluster.sh args…} with its run dir under the test's temp dir and this test's JDK. */
    private Process script(String... args) throws IOException {
        Path script = Path.of("..", "deploy", "local", "cluster.sh").toAbsolutePath().normalize();
        ProcessBuilder builder = new ProcessBuilder(Stream.concat(Stream.of(script.toString()), Arrays.stream(args)).toList());
        builder.environment().put("RUN_DIR", runDir.toString());
        builder.environment().put("JAVA_HOME", System.getProperty("java.home"));
        builder.environment().put("STOP_GRACE", "20");
        if (!args[0].equals("stop")) {
            builder.redirectError(runDir.resolve("cluster.sh.err").toFile());
        }
        return builder.start();
    }

    /** Reads the script's stdout until its ready line (and keeps draining it). */
    private Matcher awaitReady(Process cluster, Duration timeout) throws Exception {
        CompletableFuture<Matcher> ready = new CompletableFuture<>();
        Thread.ofPlatform().daemon().start(() -> {
            try (BufferedReader out = new BufferedReader(new InputStreamReader(cluster.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = out.readLine()) != null; ) {
                    Matcher m = READY.matcher(line);
                    if (m.matches()) {
                        ready.complete(m);
                    }
                }
                ready.completeExceptionally(new AssertionError("cluster.sh ended without its ready line"));
            } catch (IOException e) {
                ready.completeExceptionally(e);
            }
        });
        try {
            return ready.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (Exception e) {
            throw new AssertionError("cluster.sh not ready: " + e + "; stderr:\n" + stderr(), e);
        }
    }

    private String stderr() {
        try {
            return Files.readString(runDir.resolve("cluster.sh.err"));
        } catch (IOException e) {
            return "(no stderr: " + e + ")";
        }
    }

    private static String complete(URI uri, ReferenceModel.Case c) throws Exception {
        try (HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build()) {
            HttpResponse<String> response = http.send(HttpRequest.newBuilder(uri)
                    .timeout(Duration.ofSeconds(60))
                    .header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(
                            Map.of("prompt", c.prompt(), "max_tokens", c.generatedTokenIds().length, "temperature", 0))))
                    .build(), HttpResponse.BodyHandlers.ofString());
            assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
            JsonNode completion = JSON.readTree(response.body());
            return completion.path("choices").path(0).path("text").asText();
        }
    }
}
