package io.tandem.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpResponse.BodySubscribers;
import java.net.http.HttpTimeoutException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The OpenAI HTTP API: {@code POST /v1/completions} or {@code /v1/chat/completions} with
 * {@code stream: true} and {@code stream_options.include_usage}, over HTTP/1.1 with
 * {@link HttpClient}. Lines of the event stream are handled as they arrive on virtual threads, so
 * chunk timestamps are taken on arrival; the sending thread only waits for the end or the timeout.
 */
public final class OpenAiBackend implements Backend {

    /** Which OpenAI endpoint requests go to. */
    public enum EndpointType {
        /** {@code /v1/completions}: token-id prompts. */
        COMPLETIONS("/v1/completions"),
        /** {@code /v1/chat/completions}: one user message of text. */
        CHAT("/v1/chat/completions");

        final String path;

        EndpointType(String path) {
            this.path = path;
        }
    }

    private final ObjectMapper mapper = new ObjectMapper();
    private final URI base;
    private final EndpointType endpointType;
    private final Duration timeout;
    private final ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();
    private final HttpClient client;
    private boolean closed;

    /**
     * @param base    e.g. {@code http://127.0.0.1:8000}
     * @param timeout per request, send → end of stream
     */
    public OpenAiBackend(URI base, EndpointType endpointType, Duration timeout) {
        this.base = base;
        this.endpointType = endpointType;
        this.timeout = timeout;
        // HTTP/1.1 explicitly: the default (HTTP/2) would try an h2c upgrade on every plain connection.
        this.client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).executor(executor)
                .connectTimeout(timeout).build();
    }

    /** {@code GET /v1/models}: the {@code data[].id} values. */
    @Override
    public List<String> listModels() throws IOException, InterruptedException {
        HttpRequest request = HttpRequest.newBuilder(base.resolve("/v1/models")).timeout(timeout).GET().build();
        HttpResponse<String> response = client.send(request, HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() != 200) {
            throw new IOException("GET " + request.uri() + ": HTTP " + response.statusCode() + ": " + response.body());
        }
        List<String> ids = new ArrayList<>();
        for (JsonNode model : mapper.readTree(response.body()).path("data")) {
            ids.add(model.path("id").asText());
        }
        return ids;
    }

    @Override
    public RequestResult send(String model, SampleRequest request) throws InterruptedException {
        HttpRequest http = HttpRequest.newBuilder(base.resolve(endpointType.path))
                .timeout(timeout)
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body(model, request).toString()))
                .build();
        RequestTimeline timeline = new RequestTimeline(System.nanoTime());
        AtomicReference<OpenAiStream> stream = new AtomicReference<>();
        CompletableFuture<HttpResponse<Void>> response = client.sendAsync(http, info -> {
            stream.set(new OpenAiStream(mapper, endpointType == EndpointType.CHAT, info.statusCode(), timeline));
            return BodySubscribers.fromLineSubscriber(stream.get());
        });
        try {
            response.get(timeout.toNanos(), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            response.cancel(true);
            OpenAiStream started = stream.get();
            if (started != null) {
                started.cancel();
            }
            return RequestResult.Failure.timeout(timeout);
        } catch (ExecutionException e) {
            return e.getCause() instanceof HttpTimeoutException
                    ? RequestResult.Failure.timeout(timeout)
                    : RequestResult.Failure.of(e.getCause());
        } catch (InterruptedException e) {
            response.cancel(true);
            throw e;
        }
        return stream.get().result(request.promptLen());
    }

    /** The JSON body: vLLM's benchmark request (greedy, ignore_eos, max tokens, streamed with usage). */
    ObjectNode body(String model, SampleRequest request) {
        ObjectNode body = mapper.createObjectNode();
        body.put("model", model);
        switch (endpointType) {
            case COMPLETIONS -> {
                switch (request.prompt()) {
                    case Prompt.TokenIds ids -> {
                        ArrayNode prompt = body.putArray("prompt");
                        for (int id : ids.ids()) {
                            prompt.add(id);
                        }
                    }
                    case Prompt.Text text -> body.put("prompt", text.text());
                }
                body.put("max_tokens", request.expectedOutputLen());
            }
            case CHAT -> {
                String content = switch (request.prompt()) {
                    case Prompt.Text text -> text.text();
                    case Prompt.TokenIds ids -> throw new IllegalArgumentException(
                            "chat takes text prompts; encode synthetic prompts with PromptForm.TEXT (" + ids + ")");
                };
                ObjectNode message = body.putArray("messages").addObject();
                message.put("role", "user");
                message.put("content", content);
                body.put("max_completion_tokens", request.expectedOutputLen());
            }
        }
        body.put("temperature", 0);
        body.put("ignore_eos", true);
        body.put("stream", true);
        body.putObject("stream_options").put("include_usage", true);
        return body;
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        client.shutdownNow();
        executor.shutdownNow();
    }
}
