package io.tandem.app;

import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.tandem.proto.v1.GenerateRequest;
import io.tandem.proto.v1.SamplingParams;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Named;

/**
 * Requests {@code tandem serve} must refuse, for stories260K (context 2048 tokens, vocabulary 512),
 * with the error each must get: the same mistakes over OpenAI HTTP and over gRPC where the proto
 * can express them (it cannot mistype a field, and its zero values mean "unset").
 */
final class BadRequests {

    private static final int CONTEXT = 2048;
    private static final String COMPLETIONS = "/v1/completions";
    private static final String CHAT = "/v1/chat/completions";
    /** 3,000 words: about 9,000 tokens. */
    private static final String LONG_PROMPT = String.join(" ", Collections.nCopies(3000, "word"));
    private static final String USER_HI = "\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]";

    private BadRequests() {}

    /**
     * A bad OpenAI request: where it goes, its body, and the error it must get.
     *
     * @param param the OpenAI error's {@code param}; {@code null} where no field is to blame
     * @param code  the OpenAI error's {@code code}, or {@code null}
     */
    record Http(String path, byte[] body, int status, String param, String code) {
        static Http badRequest(String path, String body, String param) {
            return new Http(path, body.getBytes(StandardCharsets.UTF_8), 400, param, null);
        }
    }

    static Stream<Named<Http>> http() {
        byte[] notUtf8 = {'{', '"', 'p', 'r', 'o', 'm', 'p', 't', '"', ':', '"', (byte) 0xff, (byte) 0xfe, '"', '}'};
        return Stream.of(
                Named.of("malformed JSON", Http.badRequest(COMPLETIONS, "{\"prompt\": \"Once\",", null)),
                Named.of("invalid UTF-8", new Http(COMPLETIONS, notUtf8, 400, null, null)),
                Named.of("missing prompt", Http.badRequest(COMPLETIONS, "{\"max_tokens\": 4}", "prompt")),
                Named.of("missing messages", Http.badRequest(CHAT, "{\"max_tokens\": 4}", "messages")),
                Named.of("max_tokens \"abc\"", Http.badRequest(COMPLETIONS, "{\"prompt\": \"Once\", \"max_tokens\": \"abc\"}", "max_tokens")),
                Named.of("temperature \"hot\"", Http.badRequest(COMPLETIONS, "{\"prompt\": \"Once\", \"temperature\": \"hot\"}", "temperature")),
                Named.of("chat temperature \"hot\"", Http.badRequest(CHAT, "{" + USER_HI + ", \"temperature\": \"hot\"}", "temperature")),
                Named.of("max_tokens 0", Http.badRequest(COMPLETIONS, "{\"prompt\": \"Once\", \"max_tokens\": 0}", "max_tokens")),
                Named.of("chat max_tokens 0", Http.badRequest(CHAT, "{" + USER_HI + ", \"max_tokens\": 0}", "max_tokens")),
                Named.of("prompt + max_tokens beyond the context", Http.badRequest(COMPLETIONS,
                        "{\"prompt\": \"Once upon a time\", \"max_tokens\": " + (CONTEXT - 4) + "}", "max_tokens")),
                Named.of("prompt longer than the context", Http.badRequest(COMPLETIONS, "{\"prompt\": \"" + LONG_PROMPT + "\"}", "prompt")),
                Named.of("chat longer than the context", Http.badRequest(CHAT,
                        "{\"messages\": [{\"role\": \"user\", \"content\": \"" + LONG_PROMPT + "\"}], \"max_tokens\": 4}", "messages")),
                Named.of("negative temperature", Http.badRequest(COMPLETIONS, "{\"prompt\": \"Once\", \"temperature\": -0.5}", "temperature")),
                Named.of("top_p 0", Http.badRequest(COMPLETIONS, "{\"prompt\": \"Once\", \"top_p\": 0}", "top_p")),
                Named.of("top_p 1.5", Http.badRequest(COMPLETIONS, "{\"prompt\": \"Once\", \"top_p\": 1.5}", "top_p")),
                Named.of("token id 9999", Http.badRequest(COMPLETIONS, "{\"prompt\": [1, 403, 9999], \"max_tokens\": 4}", "prompt")),
                Named.of("negative token id", Http.badRequest(COMPLETIONS, "{\"prompt\": [1, -3], \"max_tokens\": 4}", "prompt[1]")),
                Named.of("unknown model", new Http(COMPLETIONS,
                        "{\"model\": \"gpt-4\", \"prompt\": \"Once\"}".getBytes(StandardCharsets.UTF_8), 404, "model", "model_not_found")),
                Named.of("chat unknown model", new Http(CHAT,
                        ("{\"model\": \"gpt-4\", " + USER_HI + "}").getBytes(StandardCharsets.UTF_8), 404, "model", "model_not_found")));
    }

    /**
     * A bad {@code tandem.v1.GenerateRequest} as wire bytes, and the status it must get.
     *
     * @param named a text the status description must contain: the field, or what is wrong
     */
    record Grpc(byte[] request, Status.Code code, String named) {
        static Grpc invalid(GenerateRequest.Builder request, String field) {
            return new Grpc(request.build().toByteArray(), Status.Code.INVALID_ARGUMENT, field);
        }
    }

    static Stream<Named<Grpc>> grpc() {
        SamplingParams.Builder four = SamplingParams.newBuilder().setMaxTokens(4);
        return Stream.of(
                // {prompt: 0xff 0xfe}: field 2, length-delimited; no generated builder writes a string that is not UTF-8.
                Named.of("invalid UTF-8", new Grpc(new byte[] {0x12, 2, (byte) 0xff, (byte) 0xfe}, Status.Code.INVALID_ARGUMENT, "UTF-8")),
                Named.of("no prompt", Grpc.invalid(GenerateRequest.newBuilder().setSampling(four), "prompt")),
                Named.of("prompt and token ids", Grpc.invalid(once().addPromptTokenIds(1), "prompt")),
                Named.of("negative max_tokens", Grpc.invalid(once().setSampling(SamplingParams.newBuilder().setMaxTokens(-1)), "max_tokens")),
                Named.of("prompt + max_tokens beyond the context",
                        Grpc.invalid(once().setSampling(SamplingParams.newBuilder().setMaxTokens(CONTEXT - 4)), "max_tokens")),
                Named.of("prompt longer than the context", Grpc.invalid(GenerateRequest.newBuilder().setPrompt(LONG_PROMPT), "prompt")),
                Named.of("negative temperature", Grpc.invalid(once().setSampling(SamplingParams.newBuilder().setTemperature(-0.5f)), "temperature")),
                Named.of("NaN temperature", Grpc.invalid(once().setSampling(SamplingParams.newBuilder().setTemperature(Float.NaN)), "temperature")),
                Named.of("top_p 1.5", Grpc.invalid(once().setSampling(SamplingParams.newBuilder().setTopP(1.5f)), "top_p")),
                Named.of("negative top_p", Grpc.invalid(once().setSampling(SamplingParams.newBuilder().setTopP(-0.1f)), "top_p")),
                Named.of("top_k -2", Grpc.invalid(once().setSampling(SamplingParams.newBuilder().setTopK(-2)), "top_k")),
                Named.of("empty stop string", Grpc.invalid(once().setSampling(SamplingParams.newBuilder().addStop("")), "stop")),
                Named.of("token id 9999", Grpc.invalid(GenerateRequest.newBuilder().addAllPromptTokenIds(List.of(1, 403, 9999)).setSampling(four), "prompt")),
                Named.of("negative token id",
                        Grpc.invalid(GenerateRequest.newBuilder().addAllPromptTokenIds(List.of(1, -3)).setSampling(four), "prompt_token_ids[1]")),
                Named.of("unknown model", new Grpc(once().setModel("gpt-4").build().toByteArray(), Status.Code.NOT_FOUND, "gpt-4")));
    }

    private static GenerateRequest.Builder once() {
        return GenerateRequest.newBuilder().setPrompt("Once upon a time");
    }

    /** Sends request bytes as they are, so a test can send what no generated builder would write. */
    static final class RawBytes implements MethodDescriptor.Marshaller<byte[]> {
        @Override
        public InputStream stream(byte[] value) {
            return new ByteArrayInputStream(value);
        }

        @Override
        public byte[] parse(InputStream stream) {
            throw new UnsupportedOperationException("requests only");
        }
    }
}
