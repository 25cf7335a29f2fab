package io.tandem.app;

import io.tandem.engine.ReferenceModel;
import io.tandem.engine.gguf.GgufFile;
import io.tandem.engine.tokenizer.Tokenizer;
import java.io.IOException;
import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;

/**
 * The texts the server must answer for llama.cpp's greedy reference cases of stories260K. The whole
 * continuation is the reference text after the prompt text (no tokenizer involved); the text of
 * the first {@code n} tokens is {@code decodeFromStart(prompt + generated[0, n))} after the
 * prompt's text, checked at construction to give the whole continuation for every case.
 */
final class ReferenceContinuations implements AutoCloseable {

    private final GgufFile gguf;
    private final Tokenizer tokenizer;
    final List<ReferenceModel.Case> cases;

    ReferenceContinuations() throws IOException {
        gguf = GgufFile.open(ReferenceModel.ggufPath());
        tokenizer = Tokenizer.fromGguf(gguf);
        cases = ReferenceModel.cases();
        for (ReferenceModel.Case c : cases) {
            String whole = text(c);
            String decoded = text(c, c.generatedTokenIds().length);
            if (!decoded.equals(whole)) {
                throw new IllegalStateException(c.name() + ": the tokenizer decodes " + decoded + " but the reference says " + whole);
            }
        }
    }

    ReferenceModel.Case get(String name) {
        return cases.stream().filter(c -> c.name().equals(name)).findFirst().orElseThrow();
    }

    /** The whole greedy continuation of {@code c}'s prompt text. */
    static String text(ReferenceModel.Case c) {
        return c.text().substring(c.prompt().length());
    }

    /** The continuation made of the first {@code n} generated tokens. */
    String text(ReferenceModel.Case c, int n) {
        int[] prompt = c.promptTokenIds();
        int[] sequence = IntStream.concat(Arrays.stream(prompt), Arrays.stream(c.generatedTokenIds(), 0, n)).toArray();
        return tokenizer.decodeFromStart(sequence).substring(tokenizer.decodeFromStart(prompt).length());
    }

    /** The first {@code n} generated token ids. */
    static int[] tokens(ReferenceModel.Case c, int n) {
        return Arrays.copyOf(c.generatedTokenIds(), n);
    }

    @Override
    public void close() {
        gguf.close();
    }
}
