package io.tandem.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.tandem.engine.gguf.GgufFile;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.util.stream.StreamSupport;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Streaming detokenization with the stories260K vocabulary (byte tokens {@code <0xNN>} are id NN + 3). */
class IncrementalDetokenizerTest {
    private static GgufFile gguf;
    private static Tokenizer tokenizer;

    @BeforeAll
    static void load() throws Exception {
        gguf = GgufFile.open(SentencePieceTokenizerTest.MODEL_DIR.resolve("stories260K.gguf"));
        tokenizer = Tokenizer.fromGguf(gguf);
    }

    @AfterAll
    static void close() {
        gguf.close();
    }

    @Test
    void shouldHoldBackFourByteEmojiUntilItsLastByteToken() {
        IncrementalDetokenizer d = new IncrementalDetokenizer(tokenizer);
        int[] llama = tokenizer.encode("🦙", false, false); // "▁" then F0 9F A6 99 as byte tokens
        assertThat(llama).containsExactly(410, 0xF0 + 3, 0x9F + 3, 0xA6 + 3, 0x99 + 3);
        assertThat(d.feed(llama[0])).isEqualTo(" ");
        assertThat(d.feed(llama[1])).isEmpty();
        assertThat(d.feed(llama[2])).isEmpty();
        assertThat(d.feed(llama[3])).isEmpty();
        assertThat(d.pendingBytes()).isEqualTo(3);
        assertThat(d.feed(llama[4])).isEqualTo("🦙");
        assertThat(d.pendingBytes()).isZero();
        assertThat(d.flush()).isEmpty();
    }

    @Test
    void shouldFlushIncompleteCharacterAsReplacement() {
        IncrementalDetokenizer d = new IncrementalDetokenizer(tokenizer);
        assertThat(d.feed(0xF0 + 3)).isEmpty();
        assertThat(d.feed(0x9F + 3)).isEmpty();
        assertThat(d.flush()).isEqualTo("\uFFFD");
        assertThat(d.flush()).isEmpty();
        assertThat(d.feed(403)).isEqualTo(" Once");
    }

    @Test
    void shouldPassMalformedBytesThroughImmediately() {
        IncrementalDetokenizer d = new IncrementalDetokenizer(tokenizer);
        assertThat(d.feed(0x80 + 3)).as("a lone continuation byte can never complete").isEqualTo("\uFFFD");
        assertThat(d.feed(0xE2 + 3)).isEmpty();
        assertThat(d.feed(403)).as("lead byte cut short by a new piece").isEqualTo("\uFFFD Once");
    }

    @Test
    void shouldStreamReferenceGenerationToTheSameTextAsDecode() throws Exception {
        JsonNode ref = new ObjectMapper().readTree(SentencePieceTokenizerTest.MODEL_DIR.resolve("reference_outputs.json").toFile());
        int[] ids = StreamSupport.stream(ref.get("lily_park").get("generated_token_ids").spliterator(), false)
                .mapToInt(JsonNode::asInt).toArray();
        IncrementalDetokenizer d = new IncrementalDetokenizer(tokenizer);
        StringBuilder streamed = new StringBuilder();
        for (int id : ids) {
            streamed.append(d.feed(id));
        }
        streamed.append(d.flush());
        assertThat(streamed.toString()).isEqualTo(tokenizer.decode(ids));
        String mixed = "日本 🦙 café";
        StringBuilder s = new StringBuilder();
        for (int id : tokenizer.encode(mixed, true, false)) {
            String piece = d.feed(id);
            assertThat(piece).doesNotContain("\uFFFD");
            s.append(piece);
        }
        assertThat(s.toString()).isEqualTo(" " + mixed);
    }

    @Test
    void shouldNotAllocateForTokensThatCompleteNoText() {
        assumeTrue(ManagementFactory.getThreadMXBean() instanceof com.sun.management.ThreadMXBean);
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        IncrementalDetokenizer d = new IncrementalDetokenizer(tokenizer);
        for (int i = 0; i < 20_000; i++) {
            d.feed(tokenizer.bosId()); // warm up: BOS decodes to no bytes
        }
        long tid = Thread.currentThread().threadId();
        long before = mx.getThreadAllocatedBytes(tid);
        for (int i = 0; i < 100_000; i++) {
            d.feed(tokenizer.bosId());
        }
        long allocated = mx.getThreadAllocatedBytes(tid) - before;
        assertThat(allocated).as("bytes allocated by 100k feeds").isLessThan(4_096);
    }

    @Test
    void shouldFindCompleteLengthOfUtf8Prefix() {
        byte[] b = "a€🦙".getBytes(StandardCharsets.UTF_8); // 1 + 3 + 4 bytes
        assertThat(IncrementalDetokenizer.completeLength(b, 8)).isEqualTo(8);
        assertThat(IncrementalDetokenizer.completeLength(b, 7)).isEqualTo(4);
        assertThat(IncrementalDetokenizer.completeLength(b, 5)).isEqualTo(4);
        assertThat(IncrementalDetokenizer.completeLength(b, 3)).isEqualTo(1);
        assertThat(IncrementalDetokenizer.completeLength(b, 1)).isEqualTo(1);
        assertThat(IncrementalDetokenizer.completeLength(new byte[] {(byte) 0xFF}, 1)).isEqualTo(1);
    }
}
