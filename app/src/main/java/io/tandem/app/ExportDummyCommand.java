package io.tandem.app;

import io.tandem.engine.model.DummyArchitecture;
import io.tandem.engine.model.DummyModels;
import io.tandem.engine.tensor.GgmlType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code tandem export-dummy}: writes the random-weight model that {@code --load-format dummy}
 * serves as a GGUF file, so llama.cpp can run the very same weights for speed comparisons.
 */
@Command(name = "export-dummy", mixinStandardHelpOptions = true,
        description = "Write a dummy (random-weight) model as GGUF, with a valid tokenizer.")
final class ExportDummyCommand implements Callable<Integer> {
    @Option(names = "--arch", required = true, paramLabel = "NAME", description = "llama-3.2-1b, llama-3-8b or tiny.")
    String arch;

    @Option(names = "--dtype", paramLabel = "TYPE", defaultValue = "q8_0", description = "f32, f16, bf16, q8_0, q4_0. Default: ${DEFAULT-VALUE}.")
    String dtype;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "0", description = "Seed of the weights. Default: ${DEFAULT-VALUE}.")
    long seed;

    @Option(names = "--out", required = true, paramLabel = "FILE.gguf", description = "Output file.")
    Path out;

    @Override
    public Integer call() throws Exception {
        DummyArchitecture a = DummyArchitecture.byName(arch);
        GgmlType type = ModelOptions.parseType(dtype);
        long start = System.nanoTime();
        DummyModels.write(a, type, seed, out);
        System.err.printf("tandem: wrote %s (%s %s, seed %d, %d MiB) in %.1f s%n", out, a.archName(), type, seed,
                Files.size(out) >> 20, (System.nanoTime() - start) / 1e9);
        return 0;
    }
}
