package io.tandem.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.tandem.engine.model.GgufModelLoader;
import io.tandem.engine.model.LlamaModel;
import io.tandem.engine.sampling.SamplingParams;
import io.tandem.engine.tokenizer.Tokenizer;
import io.tandem.kvcache.KvDtype;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * stories260K against llama.cpp on prompts beyond the shipped reference (punctuation, quotes,
 * newlines, a question, runs of spaces, non-ASCII text, special tokens spelled as text, a
 * 136-token prompt spanning 9 KV blocks, and a 200-token continuation). The expectations are
 * llama.cpp's own output, stored verbatim by {@code src/test/resources/llamacpp/regenerate.sh}.
 */
@Timeout(120)
class LlamaCppParityTest {
    private static final int BLOCK_SIZE = 16;
    private static LlamaModel model;

    @BeforeAll
    static void load() throws Exception {
        model = GgufModelLoader.load(ReferenceModel.ggufPath(), 512);
    }

    @AfterAll
    static void close() {
        model.close();
    }

    static List<LlamaCppOutput> outputs() {
        return Stream.concat(LlamaCppOutput.read("stories260K-prompts.jsonl", 64).stream(),
                LlamaCppOutput.read("stories260K-long.jsonl", 200).stream()).toList();
    }

    @Test
    void shouldCoverPromptsSpanningManyKvBlocksAndLongContinuations() {
        // Guards the resource itself: the parity tests below are only as strong as what it holds.
        assertThat(outputs()).hasSizeGreaterThanOrEqualTo(8)
                .anySatisfy(o -> assertThat(o.promptTokens().length).isGreaterThanOrEqualTo(6 * BLOCK_SIZE))
                .anySatisfy(o -> assertThat(o.generated().length).isEqualTo(200));
    }

    @ParameterizedTest
    @MethodSource("outputs")
    void shouldTokenizePromptExactlyAsLlamaCpp(LlamaCppOutput want) {
        assertThat(model.tokenizer().encode(want.prompt(), true, false)).containsExactly(want.promptTokens());
    }

    @ParameterizedTest
    @MethodSource("outputs")
    void shouldGenerateLlamaCppGreedyTokensAndTextThroughPrefillDecodeHandOff(LlamaCppOutput want) throws Exception {
        Tokenizer tok = model.tokenizer();
        try (LocalEngines engines = new LocalEngines(model, config(), 2)) {
            int[] got = engines.generate("parity", tok.encode(want.prompt(), true, false),
                    SamplingParams.greedy(want.tandemMaxTokens()), 0);
            assertThat(got).containsExactly(want.tandemTokens(tok.eosId()));
            // llama_detokenize drops the leading space of the first piece, as decodeFromStart does
            // (the ids hold no special token, where the two would differ).
            assertThat(tok.decodeFromStart(want.generated())).isEqualTo(want.text());
            ReferenceOutputsTest.awaitAllBlocksFree(engines);
        }
    }

    @Test
    void shouldGiveEachConcurrentSequenceItsOwnLlamaCppTokensWhenBatchedTogether() throws Exception {
        // All prompts at once: prefill chunks the 136-token prompt across steps next to the short
        // ones, and every decode step batches sequences at different positions and block counts.
        List<LlamaCppOutput> wants = outputs();
        Tokenizer tok = model.tokenizer();
        try (LocalEngines engines = new LocalEngines(model, config(), 2)) {
            List<CompletableFuture<int[]>> runs = new ArrayList<>();
            for (int i = 0; i < wants.size(); i++) {
                LlamaCppOutput want = wants.get(i);
                runs.add(engines.start("parity-" + i, tok.encode(want.prompt(), true, false),
                        SamplingParams.greedy(want.tandemMaxTokens()), 0));
            }
            for (int i = 0; i < wants.size(); i++) {
                assertThat(runs.get(i).get(60, TimeUnit.SECONDS)).as(wants.get(i).toString())
                        .containsExactly(wants.get(i).tandemTokens(tok.eosId()));
            }
            ReferenceOutputsTest.awaitAllBlocksFree(engines);
        }
    }

    /** Room for every prompt at once; 64 tokens a prefill step, so long prompts are chunked. */
    private static EngineConfig config() {
        return new EngineConfig(BLOCK_SIZE, KvDtype.F32, 64L << 20, 16, 64, 1024, Duration.ofSeconds(30));
    }
}
