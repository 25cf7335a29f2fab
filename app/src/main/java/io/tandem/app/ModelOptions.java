package io.tandem.app;

import io.tandem.engine.model.DummyArchitecture;
import io.tandem.engine.model.DummyModels;
import io.tandem.engine.model.GgufModelLoader;
import io.tandem.engine.model.LlamaModel;
import io.tandem.engine.tensor.GgmlType;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** Which model to load: a GGUF file (default: the repository's stories260K) or random weights. */
final class ModelOptions {
    /** Where the default model lives, relative to the repository (bin/tandem passes {@code tandem.home}). */
    static final String DEFAULT_MODEL = "../shared/models/stories260K/stories260K.gguf";

    @Option(names = "--model", paramLabel = "PATH",
            description = "GGUF model file. Default: $TANDEM_MODEL, else " + DEFAULT_MODEL + " relative to the repository.")
    Path model;

    @Option(names = "--load-format", paramLabel = "FORMAT", defaultValue = "gguf",
            description = "gguf (read --model) or dummy (random weights of --arch, as vLLM's dummy format). Default: ${DEFAULT-VALUE}.")
    String loadFormat;

    @Option(names = "--arch", paramLabel = "NAME", defaultValue = "llama-3.2-1b",
            description = "Architecture for --load-format dummy: llama-3.2-1b, llama-3-8b, tiny. Default: ${DEFAULT-VALUE}.")
    String arch;

    @Option(names = "--dtype", paramLabel = "TYPE", defaultValue = "q8_0",
            description = "Weight type for --load-format dummy: f32, f16, bf16, q8_0, q4_0. Default: ${DEFAULT-VALUE}.")
    String dtype;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "0", description = "Seed of dummy weights. Default: ${DEFAULT-VALUE}.")
    long seed;

    @Option(names = "--max-model-len", paramLabel = "TOKENS", defaultValue = "0",
            description = "Context length to serve; 0 = the model's (dummy models: 4096).")
    int maxModelLen;

    /** Loads the model, saying on stderr which file it used. */
    LlamaModel load() throws IOException {
        if (loadFormat.equals("dummy")) {
            DummyArchitecture a = DummyArchitecture.byName(arch);
            GgmlType type = parseType(dtype);
            int ctx = maxModelLen > 0 ? maxModelLen : DummyModels.DEFAULT_CONTEXT_LENGTH;
            Path file = DummyModels.cachedFile(a, type, seed);
            System.err.printf("tandem: dummy model %s (%s, seed %d), weights in %s%n", a.archName(), type, seed, file);
            return DummyModels.load(a, type, seed, ctx);
        }
        if (!loadFormat.equals("gguf")) {
            throw new IllegalArgumentException("unknown --load-format '" + loadFormat + "' (expected gguf or dummy)");
        }
        Path path = resolveModelPath();
        System.err.println("tandem: loading model " + path.toAbsolutePath().normalize());
        return GgufModelLoader.load(path, maxModelLen);
    }

    private Path resolveModelPath() {
        if (model != null) {
            if (!Files.isRegularFile(model)) {
                throw new IllegalArgumentException("--model " + model + ": no such file");
            }
            return model;
        }
        String env = System.getenv("TANDEM_MODEL");
        if (env != null && !env.isEmpty()) {
            Path p = Path.of(env);
            if (!Files.isRegularFile(p)) {
                throw new IllegalArgumentException("$TANDEM_MODEL=" + env + ": no such file");
            }
            return p;
        }
        String home = System.getProperty("tandem.home", ".");
        Path p = Path.of(home).resolve(DEFAULT_MODEL);
        if (!Files.isRegularFile(p)) {
            throw new IllegalArgumentException("no --model given, $TANDEM_MODEL unset, and the default model "
                    + p.toAbsolutePath().normalize() + " does not exist (is ../shared beside the repository?)");
        }
        return p;
    }

    static GgmlType parseType(String name) {
        for (GgmlType t : GgmlType.values()) {
            if (t.name().equalsIgnoreCase(name)) {
                return t;
            }
        }
        throw new IllegalArgumentException("unknown --dtype '" + name + "' (expected f32, f16, bf16, q8_0, q4_0)");
    }
}
