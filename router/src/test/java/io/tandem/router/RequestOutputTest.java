package io.tandem.router;

import static org.assertj.core.api.Assertions.assertThat;

import io.tandem.engine.FinishReason;
import io.tandem.engine.ReferenceModel;
import io.tandem.engine.gguf.GgufFile;
import io.tandem.engine.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The text {@link RequestOutput} makes of generated token ids, with the stories260K SPM tokenizer
 * and llama.cpp's reference continuations. Runs on a direct executor: every drain happens inside
 * the engine-side call.
 */
class RequestOutputTest {
    private static GgufFile gguf;
    private static Tokenizer tokenizer;

    @BeforeAll
    static void loadTokenizer() throws Exception {
        gguf = GgufFile.open(ReferenceModel.ggufPath());
        tokenizer = Tokenizer.fromGguf(gguf);
    }

    @AfterAll
    static void close() {
        gguf.close();
    }

    /** What a listener was told, in order. */
    private static final class Recorder implements GenerationListener {
        final StringBuilder text = new StringBuilder();
        final List<Integer> tokens = new ArrayList<>();
        FinishReason reason;
        Usage usage;

        @Override
        public void onOutput(int[] tokenIds, String textDelta) {
            Arrays.stream(tokenIds).forEach(tokens::add);
            text.append(textDelta);
        }

        @Override
        public void onFinish(FinishReason reason, Usage usage) {
            this.reason = reason;
            this.usage = usage;
        }

        @Override
        public void onError(Throwable error) {
            throw new AssertionError("unexpected error", error);
        }
    }

    private static Recorder run(ReferenceModel.Case c, List<String> stop) {
        int[] generated = c.generatedTokenIds();
        Recorder recorder = new Recorder();
        RequestOutput output = new RequestOutput(generated.length, c.promptTokenIds(), tokenizer, stop, Runnable::run,
                recorder, () -> {}, (reason, tokenNanos, numTokens) -> {});
        for (int id : generated) {
            output.onToken(id);
        }
        output.onFinish(FinishReason.LENGTH);
        return recorder;
    }

    private static ReferenceModel.Case reference(String name) {
        return ReferenceModel.cases().stream().filter(c -> c.name().equals(name)).findFirst().orElseThrow();
    }

    @Test
    void shouldDropDummyPrefixSpaceWhenThePromptIsOnlyBos() {
        ReferenceModel.Case bosOnly = reference("bos_only");

        Recorder recorder = run(bosOnly, List.of());

        // llama.cpp's text of the whole sequence; the prompt "" adds nothing to it.
        assertThat(recorder.text.toString()).isEqualTo(bosOnly.text()).startsWith("Once upon a time");
        assertThat(recorder.reason).isEqualTo(FinishReason.LENGTH);
        assertThat(recorder.usage).isEqualTo(new Usage(1, bosOnly.generatedTokenIds().length));
    }

    @Test
    void shouldKeepTheLeadingSpaceOfAContinuationAfterPromptText() {
        ReferenceModel.Case lily = reference("lily_park");

        Recorder recorder = run(lily, List.of());

        assertThat(recorder.text.toString()).isEqualTo(lily.text().substring(lily.prompt().length()))
                .startsWith(" with her mom");
    }

    @Test
    void shouldMatchStopStringsAgainstTheTextWithoutTheDummyPrefixSpace() {
        ReferenceModel.Case bosOnly = reference("bos_only");

        Recorder recorder = run(bosOnly, List.of(" upon"));

        assertThat(recorder.text.toString()).isEqualTo("Once");
        assertThat(recorder.reason).isEqualTo(FinishReason.STOP);
    }

    @Test
    void shouldStillEndTheRequestOnceTheRouterHasShutItsOutputExecutor() {
        // Router.close() shuts the executor before the engines end what they hold (onFinish(ABORT)):
        // that call runs on an engine thread and must neither throw there nor leave the listener waiting.
        ReferenceModel.Case lily = reference("lily_park");
        ExecutorService closed = Executors.newVirtualThreadPerTaskExecutor();
        closed.shutdown();
        Recorder recorder = new Recorder();
        RequestOutput output = new RequestOutput(4, lily.promptTokenIds(), tokenizer, List.of(), closed, recorder,
                () -> {}, (reason, tokenNanos, numTokens) -> {});

        output.onToken(lily.generatedTokenIds()[0]);
        output.onFinish(FinishReason.ABORT);

        assertThat(recorder.tokens).containsExactly(lily.generatedTokenIds()[0]);
        assertThat(recorder.reason).isEqualTo(FinishReason.ABORT);
        assertThat(recorder.usage).isEqualTo(new Usage(lily.promptTokenIds().length, 1));
    }

    @Test
    void shouldEndTheRequestOnceWhenTheListenerThrowsAndTakeNoFurtherOutput() {
        ReferenceModel.Case lily = reference("lily_park");
        List<String> calls = new ArrayList<>();
        GenerationListener broken = new GenerationListener() {
            @Override
            public void onOutput(int[] tokenIds, String textDelta) {
                calls.add("output");
                throw new IllegalStateException("stream already closed");
            }

            @Override
            public void onFinish(FinishReason reason, Usage usage) {
                calls.add("finish " + reason);
            }

            @Override
            public void onError(Throwable error) {
                calls.add("error " + error.getMessage());
            }
        };
        int[] cancels = new int[1];
        List<FinishReason> done = new ArrayList<>();
        RequestOutput output = new RequestOutput(8, lily.promptTokenIds(), tokenizer, List.of(), Runnable::run, broken,
                () -> cancels[0]++, (reason, tokenNanos, numTokens) -> done.add(reason));

        for (int i = 0; i < 4; i++) {
            output.onToken(lily.generatedTokenIds()[i]);
        }
        output.onFinish(FinishReason.ABORT);

        assertThat(calls).containsExactly("output", "error stream already closed");
        assertThat(done).as("in-flight slot given back once").containsExactly((FinishReason) null);
        assertThat(cancels[0]).as("engines told to stop").isEqualTo(1);
    }
}
