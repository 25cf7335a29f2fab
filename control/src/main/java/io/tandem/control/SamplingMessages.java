package io.tandem.control;

import io.tandem.engine.InvalidArgumentException;
import io.tandem.engine.sampling.SamplingParams;
import io.tandem.proto.v1.ResolvedSamplingParams;
import java.util.List;

/**
 * {@link SamplingParams} plus the request's seed ↔ {@code tandem.v1.ResolvedSamplingParams}. Stop
 * strings stay on the router (it detokenizes and cancels), so workers never see them.
 */
public final class SamplingMessages {
    private SamplingMessages() {}

    /** @param seed the request's concrete seed (the router's choice when the client gave none) */
    public static ResolvedSamplingParams toProto(SamplingParams sampling, long seed) {
        return ResolvedSamplingParams.newBuilder()
                .setTemperature(sampling.temperature())
                .setTopP(sampling.topP())
                .setTopK(sampling.topK())
                .setMaxTokens(sampling.maxTokens())
                .setSeed(seed)
                .setIgnoreEos(sampling.ignoreEos())
                .build();
    }

    /**
     * The parameters, with {@link SamplingParams#seed()} the message's seed.
     *
     * @throws InvalidArgumentException naming the field when a value is out of range
     */
    public static SamplingParams fromProto(ResolvedSamplingParams m) {
        return new SamplingParams(m.getTemperature(), m.getTopP(), m.getTopK(), m.getMaxTokens(), m.getSeed(), List.of(),
                m.getIgnoreEos());
    }
}
