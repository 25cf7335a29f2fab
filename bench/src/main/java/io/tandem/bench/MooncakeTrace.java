package io.tandem.bench;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * A Mooncake request trace (FAST'25, {@code kvcache-ai/Mooncake} traces): JSON lines
 * {@code {"timestamp": ms, "input_length": tokens, "output_length": tokens, "hash_ids": [ids]}}.
 * The timestamp schedules the request's arrival (relative to the first entry); each hash id stands
 * for one {@value #BLOCK_SIZE}-token block of the prompt, and equal hash ids mean equal block
 * content, which is how the trace encodes prefix sharing.
 *
 * <p>The prompt is rebuilt from the blocks: block {@code h}'s tokens are a pure function of
 * {@code (seed, h)}, so requests sharing a run of hash ids share exactly that prefix. The prompt is
 * cut to {@code input_length} (the last block is usually partial); if {@code input_length} is longer
 * than the blocks, the rest is request-specific random ids.
 *
 * @param entries the trace entries in file order
 */
public record MooncakeTrace(List<Entry> entries) {

    /** Tokens per hash id, as the Mooncake traces define it. */
    public static final int BLOCK_SIZE = 512;

    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final long GOLDEN_GAMMA = 0x9E3779B97F4A7C15L;

    public MooncakeTrace {
        entries = List.copyOf(entries);
    }

    /**
     * One request of the trace.
     *
     * @param timestampMs  arrival time, milliseconds
     * @param inputLength  prompt tokens, {@code >= 1}
     * @param outputLength tokens to generate, {@code >= 1}
     * @param hashIds      one id per {@value #BLOCK_SIZE}-token prompt block
     */
    public record Entry(long timestampMs, int inputLength, int outputLength, long[] hashIds) {
        public Entry {
            if (inputLength < 1 || outputLength < 1) {
                throw new IllegalArgumentException("input_length and output_length must be >= 1, got "
                        + inputLength + " and " + outputLength);
            }
            hashIds = hashIds.clone();
        }

        @Override
        public long[] hashIds() {
            return hashIds.clone();
        }

        @Override
        public boolean equals(Object other) {
            return other instanceof Entry that && timestampMs == that.timestampMs && inputLength == that.inputLength
                    && outputLength == that.outputLength && Arrays.equals(hashIds, that.hashIds);
        }

        @Override
        public int hashCode() {
            return Long.hashCode(timestampMs) * 31 + Arrays.hashCode(hashIds);
        }
    }

    /**
     * Reads the first {@code limit} entries of a JSONL trace (blank lines skipped).
     *
     * @throws IOException              when the file cannot be read
     * @throws IllegalArgumentException naming the line and field that is missing or out of range
     */
    public static MooncakeTrace read(Path file, int limit) throws IOException {
        List<Entry> entries = new ArrayList<>();
        try (BufferedReader reader = Files.newBufferedReader(file)) {
            String line;
            int lineNumber = 0;
            while (entries.size() < limit && (line = reader.readLine()) != null) {
                lineNumber++;
                if (!line.isBlank()) {
                    entries.add(parse(line, file + ":" + lineNumber));
                }
            }
        }
        if (entries.isEmpty()) {
            throw new IllegalArgumentException(file + ": the Mooncake trace holds no entries");
        }
        return new MooncakeTrace(entries);
    }

    /** Arrival offsets in nanoseconds: each entry's timestamp minus the first entry's. */
    public long[] arrivalOffsetsNanos() {
        long[] offsets = new long[entries.size()];
        long first = entries.getFirst().timestampMs();
        for (int i = 0; i < offsets.length; i++) {
            offsets[i] = TimeUnit.MILLISECONDS.toNanos(Math.max(0, entries.get(i).timestampMs() - first));
        }
        return offsets;
    }

    /** The requests of the trace, prompts rebuilt from the hash-id blocks as the class describes. */
    public List<SampleRequest> requests(TokenIdRange ids, PromptForm form, long seed) {
        Map<Long, int[]> blocks = new HashMap<>();
        SplittableRandom tails = new SplittableRandom(seed);
        List<SampleRequest> requests = new ArrayList<>(entries.size());
        for (Entry entry : entries) {
            int[] prompt = new int[entry.inputLength()];
            long[] hashIds = entry.hashIds;
            int filled = 0;
            for (int b = 0; b < hashIds.length && filled < prompt.length; b++) {
                int[] block = blocks.computeIfAbsent(hashIds[b], h -> ids.next(new SplittableRandom(seed * GOLDEN_GAMMA + h), BLOCK_SIZE));
                int n = Math.min(BLOCK_SIZE, prompt.length - filled);
                System.arraycopy(block, 0, prompt, filled, n);
                filled += n;
            }
            for (; filled < prompt.length; filled++) {
                prompt[filled] = ids.next(tails);
            }
            requests.add(new SampleRequest(form.encode(prompt), prompt.length, entry.outputLength()));
        }
        return requests;
    }

    private static Entry parse(String line, String where) {
        JsonNode node;
        try {
            node = MAPPER.readTree(line);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(where + ": not a JSON object: " + e.getOriginalMessage(), e);
        }
        if (!node.isObject()) {
            throw new IllegalArgumentException(where + ": not a JSON object");
        }
        JsonNode hashIds = node.path("hash_ids");
        if (!hashIds.isArray()) {
            throw new IllegalArgumentException(where + ": hash_ids must be an array of integers");
        }
        long[] ids = new long[hashIds.size()];
        for (int i = 0; i < ids.length; i++) {
            if (!hashIds.get(i).canConvertToLong()) {
                throw new IllegalArgumentException(where + ": hash_ids[" + i + "] must be an integer, got " + hashIds.get(i));
            }
            ids[i] = hashIds.get(i).longValue();
        }
        try {
            return new Entry(timestampMs(node), requiredInt(node, "input_length"), requiredInt(node, "output_length"), ids);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(where + ": " + e.getMessage(), e);
        }
    }

    /** {@code timestamp} in milliseconds; fractional milliseconds are rounded. */
    private static long timestampMs(JsonNode node) {
        JsonNode value = node.get("timestamp");
        if (value == null || !value.isNumber()) {
            throw new IllegalArgumentException("timestamp must be a number of milliseconds, got " + value);
        }
        return Math.round(value.doubleValue());
    }

    private static int requiredInt(JsonNode node, String field) {
        JsonNode value = node.get(field);
        if (value == null || !value.isIntegralNumber() || !value.canConvertToInt()) {
            throw new IllegalArgumentException(field + " must be an integer, got " + value);
        }
        return value.intValue();
    }
}
