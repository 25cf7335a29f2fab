package io.tandem.engine;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The ground truth in {@code ../shared/models/stories260K}: the model file and the greedy outputs
 * and logits llama.cpp reproduces ({@code reference_outputs.json}). Shared by tests of every module
 * through the engine's test jar.
 */
public final class ReferenceModel {
    private ReferenceModel() {}

    /** One reference prompt. */
    public record Case(String name, String prompt, int[] promptTokenIds, int[] generatedTokenIds, String text,
                       int maxPositions, float[] logits) {}

    public static Path sharedDir() {
        return Path.of(System.getProperty("tandem.shared.dir", "../../shared"));
    }

    public static Path ggufPath() {
        return sharedDir().resolve("models/stories260K/stories260K.gguf");
    }

    public static JsonNode json() {
        try {
            return new ObjectMapper().readTree(sharedDir().resolve("models/stories260K/reference_outputs.json").toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The three generation cases: bos_only, once_upon_a_time, lily_park. */
    public static List<Case> cases() {
        JsonNode root = json();
        List<Case> out = new ArrayList<>();
        for (String name : List.of("bos_only", "once_upon_a_time", "lily_park")) {
            JsonNode c = root.get(name);
            JsonNode l = c.get("logits_after_last_prompt_token");
            float[] logits = new float[l.size()];
            for (int i = 0; i < logits.length; i++) {
                logits[i] = (float) l.get(i).asDouble();
            }
            out.add(new Case(name, c.get("prompt").asText(), ints(c.get("prompt_token_ids")),
                    ints(c.get("generated_token_ids")), c.get("text").asText(), c.get("max_positions").asInt(), logits));
        }
        return out;
    }

    public static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asInt();
        }
        return out;
    }
}
