package io.tandem.engine;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One line of {@code llamacpp-ref/run.sh} output, stored verbatim under {@code src/test/resources/llamacpp}
 * by its {@code regenerate.sh}: a prompt, its token ids as llama.cpp tokenizes it (BOS first,
 * {@code parse_special = false}), the greedy continuation and llama.cpp's detokenized text.
 *
 * @param maxTokens the {@code --max} the file was generated with: llama.cpp stops there or at EOS,
 *                  which it leaves out of {@code generated}
 */
public record LlamaCppOutput(String prompt, int[] promptTokens, int[] generated, String text, int maxTokens) {

    /** Whether llama.cpp stopped because the model produced EOS (fewer than {@code maxTokens} ids). */
    public boolean stoppedAtEos() {
        return generated.length < maxTokens;
    }

    /** {@code max_tokens} that makes Tandem stop where llama.cpp did: one more when EOS ended it. */
    public int tandemMaxTokens() {
        return stoppedAtEos() ? generated.length + 1 : generated.length;
    }

    /** What Tandem streams for the same run: llama.cpp's ids, then EOS if llama.cpp stopped there. */
    public int[] tandemTokens(int eosId) {
        if (!stoppedAtEos()) {
            return generated;
        }
        int[] out = Arrays.copyOf(generated, generated.length + 1);
        out[generated.length] = eosId;
        return out;
    }

    /** Reads the JSON lines of classpath resource {@code llamacpp/<name>}. */
    public static List<LlamaCppOutput> read(String name, int maxTokens) {
        ObjectMapper json = new ObjectMapper();
        List<LlamaCppOutput> out = new ArrayList<>();
        try (InputStream in = LlamaCppOutput.class.getResourceAsStream("/llamacpp/" + name)) {
            if (in == null) {
                throw new IllegalArgumentException("no test resource llamacpp/" + name);
            }
            BufferedReader lines = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
            for (String line = lines.readLine(); line != null; line = lines.readLine()) {
                JsonNode n = json.readTree(line);
                out.add(new LlamaCppOutput(n.get("prompt").asText(), ReferenceModel.ints(n.get("promptTokens")),
                        ReferenceModel.ints(n.get("generated")), n.get("text").asText(), maxTokens));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out;
    }

    @Override
    public String toString() {
        return "prompt \"" + prompt.replace("\n", "\\n") + "\"";
    }
}
