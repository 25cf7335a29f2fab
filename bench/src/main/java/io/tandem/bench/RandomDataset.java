package io.tandem.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.random.RandomGenerator;

/**
 * vLLM's random dataset: prompts of random token ids with lengths uniform in
 * {@code [floor(len·(1−r)), ceil(len·(1+r))]} (both ends inclusive; output lengths at least 1), each
 * preceded by one shared prefix of {@code prefixLen} random ids, identical in every request (vLLM's
 * {@code --random-prefix-len}), so a prefix cache can reuse it.
 *
 * @param inputLen   mean prompt length after the prefix, in tokens
 * @param outputLen  mean output length, in tokens, {@code >= 1}
 * @param rangeRatio {@code r} in {@code [0, 1)}; 0 = every request has exactly the mean lengths
 * @param prefixLen  shared prefix length, in tokens, {@code >= 0}
 * @param ids        the ids prompts draw from
 * @param form       token ids or words (chat)
 */
public record RandomDataset(int inputLen, int outputLen, double rangeRatio, int prefixLen, TokenIdRange ids, PromptForm form) {

    public RandomDataset {
        if (inputLen < 0) {
            throw new IllegalArgumentException("input length must be >= 0, got " + inputLen);
        }
        if (outputLen < 1) {
            throw new IllegalArgumentException("output length must be >= 1, got " + outputLen);
        }
        if (!(rangeRatio >= 0 && rangeRatio < 1)) {
            throw new IllegalArgumentException("range ratio must be in [0, 1), got " + rangeRatio);
        }
        if (prefixLen < 0) {
            throw new IllegalArgumentException("prefix length must be >= 0, got " + prefixLen);
        }
        if (inputLen + prefixLen < 1) {
            throw new IllegalArgumentException("input length + prefix length must be >= 1");
        }
    }

    /** Draws {@code numPrompts} requests; the same {@code rng} state gives the same requests. */
    public List<SampleRequest> sample(int numPrompts, RandomGenerator rng) {
        int[] prefix = ids.next(rng, prefixLen);
        // A prompt must hold at least one token: without a prefix, the suffix cannot be empty.
        int inputLow = Math.max(prefixLen == 0 ? 1 : 0, low(inputLen));
        int inputHigh = Math.max(inputLow, high(inputLen));
        int outputLow = Math.max(1, low(outputLen));
        int outputHigh = Math.max(outputLow, high(outputLen));
        List<SampleRequest> requests = new ArrayList<>(numPrompts);
        for (int i = 0; i < numPrompts; i++) {
            int suffixLen = rng.nextInt(inputLow, inputHigh + 1);
            int outLen = rng.nextInt(outputLow, outputHigh + 1);
            int[] prompt = new int[prefixLen + suffixLen];
            System.arraycopy(prefix, 0, prompt, 0, prefixLen);
            for (int j = prefixLen; j < prompt.length; j++) {
                prompt[j] = ids.next(rng);
            }
            requests.add(new SampleRequest(form.encode(prompt), prompt.length, outLen));
        }
        return requests;
    }

    private int low(int len) {
        return (int) Math.floor(len * (1 - rangeRatio));
    }

    private int high(int len) {
        return (int) Math.ceil(len * (1 + rangeRatio));
    }
}
