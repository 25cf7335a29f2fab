package io.tandem.bench;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.random.RandomGenerator;

/**
 * The ShareGPT dataset as vLLM samples it: a JSON array of
 * {@code {"conversations": [{"from": "human", "value": …}, {"from": "gpt", "value": …}, …]}}; the
 * first turn (human) is the prompt, sent as text, and the second (gpt) gives the output length.
 *
 * <p>No tokenizer is at hand, so lengths are estimated: {@code ceil(words × 1.3)} tokens for a text
 * of {@code words} whitespace-separated words (about 1.3 BPE tokens per English word). The server's
 * {@code usage.prompt_tokens} replaces the prompt estimate in the metrics. As vLLM does, entries
 * are shuffled with the seed, then taken in order while valid: prompt and output at least 4 tokens,
 * prompt at most 1024, prompt + output at most 2048 (the minimum output is not checked when
 * {@code --output-len} fixes the output length). When fewer valid entries exist than requested,
 * random ones are repeated.
 */
public final class ShareGptDataset {

    static final double TOKENS_PER_WORD = 1.3;
    static final int MIN_LEN = 4;
    static final int MAX_PROMPT_LEN = 1024;
    static final int MAX_TOTAL_LEN = 2048;

    private static final ObjectMapper MAPPER = new ObjectMapper();

    private ShareGptDataset() {}

    /**
     * @param outputLen fixed output length for every request, or {@code null} to use each answer's length
     * @throws IOException              when the file cannot be read or is not a JSON array
     * @throws IllegalArgumentException when no entry is valid
     */
    public static List<SampleRequest> load(Path file, int numPrompts, Integer outputLen, RandomGenerator rng) throws IOException {
        List<Conversation> entries = readEntries(file);
        Collections.shuffle(entries, Random.from(rng));
        List<SampleRequest> requests = new ArrayList<>(numPrompts);
        for (Conversation entry : entries) {
            if (requests.size() == numPrompts) {
                break;
            }
            SampleRequest request = toRequest(entry, outputLen);
            if (request != null) {
                requests.add(request);
            }
        }
        if (requests.isEmpty()) {
            throw new IllegalArgumentException(file + ": no ShareGPT entry with a human prompt and a gpt answer of valid length");
        }
        int valid = requests.size();
        while (requests.size() < numPrompts) {
            requests.add(requests.get(rng.nextInt(valid)));
        }
        return requests;
    }

    /** Estimated token count of {@code text}: {@code ceil(whitespace words × 1.3)}. */
    static int estimateTokens(String text) {
        String stripped = text.strip();
        if (stripped.isEmpty()) {
            return 0;
        }
        int words = stripped.split("\\s+").length;
        return (int) Math.ceil(words * TOKENS_PER_WORD);
    }

    /** The first exchange of one conversation, with the answer's length already estimated. */
    private record Conversation(String prompt, int promptLen, int answerLen) {}

    private static List<Conversation> readEntries(Path file) throws IOException {
        List<Conversation> entries = new ArrayList<>();
        // Streamed element by element: the public ShareGPT file is hundreds of megabytes.
        try (JsonParser parser = MAPPER.createParser(file.toFile())) {
            if (parser.nextToken() != JsonToken.START_ARRAY) {
                throw new IOException(file + ": a ShareGPT file is a JSON array of conversations");
            }
            while (parser.nextToken() == JsonToken.START_OBJECT) {
                JsonNode turns = MAPPER.readValue(parser, JsonNode.class).path("conversations");
                if (turns.size() >= 2 && "human".equals(turns.get(0).path("from").asText())
                        && "gpt".equals(turns.get(1).path("from").asText())) {
                    String prompt = turns.get(0).path("value").asText();
                    entries.add(new Conversation(prompt, estimateTokens(prompt), estimateTokens(turns.get(1).path("value").asText())));
                }
            }
        }
        return entries;
    }

    /** The request for {@code entry}, or {@code null} when its lengths are out of bounds. */
    private static SampleRequest toRequest(Conversation entry, Integer fixedOutputLen) {
        int promptLen = entry.promptLen();
        int outputLen = fixedOutputLen != null ? fixedOutputLen : entry.answerLen();
        boolean outputTooShort = fixedOutputLen == null && outputLen < MIN_LEN;
        if (promptLen < MIN_LEN || outputTooShort || promptLen > MAX_PROMPT_LEN || promptLen + outputLen > MAX_TOTAL_LEN) {
            return null;
        }
        return new SampleRequest(new Prompt.Text(entry.prompt()), promptLen, outputLen);
    }
}
