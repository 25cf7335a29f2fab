package io.tandem.router.grpc;

import io.tandem.engine.InvalidArgumentException;
import io.tandem.engine.sampling.SamplingParams;
import io.tandem.proto.v1.GenerateRequest;
import io.tandem.router.CompletionRequest;
import java.util.HexFormat;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Translates a {@code tandem.v1.GenerateRequest} into the router's {@link CompletionRequest},
 * reading proto3's zero defaults as the proto documents them: {@code temperature} 0 = greedy,
 * {@code top_p} 0 = 1, {@code top_k} 0 = all tokens, {@code max_tokens} 0 = 16, {@code seed} 0 =
 * random, empty {@code prompt} = unset, empty {@code request_id} = one is assigned.
 */
final class GenerateRequests {

    private GenerateRequests() {}

    /**
     * @throws InvalidArgumentException naming the field ({@code prompt}, {@code prompt_token_ids[i]},
     *         {@code temperature}, {@code top_p}, {@code top_k}, {@code max_tokens}, {@code stop})
     */
    static CompletionRequest toCompletionRequest(GenerateRequest request) {
        io.tandem.proto.v1.SamplingParams sampling = request.getSampling();
        SamplingParams params = new SamplingParams(
                sampling.getTemperature(),
                sampling.getTopP() == 0f ? 1f : sampling.getTopP(),
                sampling.getTopK(),
                sampling.getMaxTokens() == 0 ? SamplingParams.DEFAULT_MAX_TOKENS : sampling.getMaxTokens(),
                sampling.getSeed() == 0 ? null : sampling.getSeed(),
                sampling.getStopList(),
                sampling.getIgnoreEos());
        String prompt = request.getPrompt().isEmpty() ? null : request.getPrompt();
        int[] tokenIds = null;
        if (request.getPromptTokenIdsCount() > 0) {
            tokenIds = new int[request.getPromptTokenIdsCount()];
            for (int i = 0; i < tokenIds.length; i++) {
                tokenIds[i] = request.getPromptTokenIds(i);
                if (tokenIds[i] < 0) {
                    throw new InvalidArgumentException("prompt_token_ids[" + i + "]",
                            "prompt_token_ids[" + i + "] must be >= 0, got " + tokenIds[i]);
                }
            }
        }
        String requestId = request.getRequestId().isEmpty() ? newRequestId() : request.getRequestId();
        String model = request.getModel().isEmpty() ? null : request.getModel();
        return new CompletionRequest(requestId, model, prompt, tokenIds, params,
                request.getCacheSalt().isEmpty() ? null : request.getCacheSalt());
    }

    private static String newRequestId() {
        byte[] bytes = new byte[16];
        ThreadLocalRandom.current().nextBytes(bytes);
        return "gen-" + HexFormat.of().formatHex(bytes);
    }
}
