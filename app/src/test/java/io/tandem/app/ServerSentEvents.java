package io.tandem.app;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.ArrayList;
import java.util.List;

/**
 * A whole OpenAI streaming response body, parsed strictly: nothing but {@code data: <json>\n\n}
 * events, ended by exactly one {@code data: [DONE]\n\n}.
 *
 * @param chunks the JSON events before {@code [DONE]}, in order
 */
record ServerSentEvents(List<JsonNode> chunks) {

    private static final String DATA = "data: ";
    private static final String EVENT_END = "\n\n";
    private static final String DONE = "[DONE]";

    /** @throws AssertionError quoting the body when it is not such a stream */
    static ServerSentEvents parse(String body, ObjectMapper mapper) {
        if (!body.endsWith(DATA + DONE + EVENT_END)) {
            throw new AssertionError("the stream does not end with data: [DONE]:\n" + body);
        }
        List<JsonNode> chunks = new ArrayList<>();
        String[] events = body.substring(0, body.length() - EVENT_END.length()).split(EVENT_END, -1);
        for (int i = 0; i < events.length - 1; i++) {
            if (!events[i].startsWith(DATA) || events[i].contains("\n")) {
                throw new AssertionError("event " + i + " is not one data line: " + events[i]);
            }
            try {
                chunks.add(mapper.readTree(events[i].substring(DATA.length())));
            } catch (JsonProcessingException e) {
                throw new AssertionError("event " + i + " is not JSON: " + events[i], e);
            }
        }
        return new ServerSentEvents(chunks);
    }

    /** The concatenated {@code choices[0].text} (completions) or {@code choices[0].delta.content} (chat). */
    String text() {
        StringBuilder text = new StringBuilder();
        for (JsonNode chunk : chunks) {
            JsonNode choice = chunk.path("choices").path(0);
            text.append(choice.has("delta") ? choice.path("delta").path("content").asText("") : choice.path("text").asText(""));
        }
        return text.toString();
    }
}
