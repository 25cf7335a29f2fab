package io.tandem.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.HttpURLConnection;
import java.util.concurrent.Flow;

/**
 * Reads one OpenAI streaming response line by line as it arrives: server-sent events
 * {@code data: {chunk}} ending with {@code data: [DONE]}. A chunk carries tokens when
 * {@code choices[0].text} (completions) or {@code choices[0].delta.content} (chat) is non-empty;
 * {@code usage} (from {@code stream_options.include_usage}) gives the token counts; an
 * {@code {"error": …}} event fails the request. A non-200 response is collected as the error body.
 */
final class OpenAiStream implements Flow.Subscriber<String> {

    /** Error bodies are cut here: the reason only needs the message. */
    private static final int MAX_ERROR_BODY_CHARS = 4096;
    private static final String DATA = "data:";
    private static final String DONE = "[DONE]";

    private final ObjectMapper mapper;
    private final boolean chat;
    private final int status;
    private final RequestTimeline timeline;
    private final StringBuilder errorBody = new StringBuilder();
    private volatile Flow.Subscription subscription;
    private String streamError;

    OpenAiStream(ObjectMapper mapper, boolean chat, int status, RequestTimeline timeline) {
        this.mapper = mapper;
        this.chat = chat;
        this.status = status;
        this.timeline = timeline;
    }

    @Override
    public void onSubscribe(Flow.Subscription subscription) {
        this.subscription = subscription;
        subscription.request(Long.MAX_VALUE);
    }

    @Override
    public void onNext(String line) {
        long now = System.nanoTime();
        if (status != HttpURLConnection.HTTP_OK) {
            if (errorBody.length() < MAX_ERROR_BODY_CHARS) {
                errorBody.append(line, 0, Math.min(line.length(), MAX_ERROR_BODY_CHARS - errorBody.length()));
            }
            return;
        }
        if (streamError == null && line.startsWith(DATA)) {
            String data = line.substring(DATA.length()).strip();
            if (!data.equals(DONE)) {
                onEvent(now, data);
            }
        }
    }

    /** The HTTP client completes the response future exceptionally; nothing to record here. */
    @Override
    public void onError(Throwable error) {}

    @Override
    public void onComplete() {}

    /** Stops reading (the request timed out); safe from any thread. */
    void cancel() {
        Flow.Subscription s = subscription;
        if (s != null) {
            s.cancel();
        }
    }

    /** The outcome once the body completed; see {@link RequestTimeline#finish(int)}. */
    RequestResult result(int estimatedPromptTokens) {
        if (status != HttpURLConnection.HTTP_OK) {
            return new RequestResult.Failure("HTTP " + status + ": " + errorMessage(errorBody.toString()));
        }
        if (streamError != null) {
            return new RequestResult.Failure("stream error: " + streamError);
        }
        return timeline.finish(estimatedPromptTokens);
    }

    private void onEvent(long now, String data) {
        JsonNode chunk;
        try {
            chunk = mapper.readTree(data);
        } catch (IOException e) {
            streamError = "malformed event: " + abbreviate(data);
            return;
        }
        JsonNode error = chunk.get("error");
        if (error != null && !error.isNull()) {
            streamError = error.path("message").isTextual() ? error.path("message").textValue() : abbreviate(error.toString());
            return;
        }
        JsonNode choices = chunk.path("choices");
        if (!choices.isEmpty()) {
            JsonNode text = chat ? choices.get(0).path("delta").path("content") : choices.get(0).path("text");
            if (text.isTextual() && !text.textValue().isEmpty()) {
                // The token count of a text chunk is unknown; usage corrects the total at the end.
                timeline.onTokens(now, 1);
            }
        }
        JsonNode usage = chunk.get("usage");
        if (usage != null && usage.isObject()) {
            timeline.onUsage(usage.path("prompt_tokens").asInt(RequestTimeline.UNREPORTED),
                    usage.path("completion_tokens").asInt(RequestTimeline.UNREPORTED));
        }
    }

    /** {@code error.message} of an OpenAI error body, else the body itself, abbreviated. */
    private String errorMessage(String body) {
        try {
            JsonNode message = mapper.readTree(body).path("error").path("message");
            if (message.isTextual()) {
                return message.textValue();
            }
        } catch (IOException e) {
            // Not JSON (a proxy's HTML page, say): the body itself is the best description.
        }
        return body.isBlank() ? "(empty body)" : abbreviate(body);
    }

    private static String abbreviate(String text) {
        return text.length() <= 200 ? text : text.substring(0, 200) + "…";
    }
}
