package io.tandem.control;

import io.tandem.engine.InvalidArgumentException;
import io.tandem.engine.PrefillRequest;
import io.tandem.engine.PrefillResult;
import io.tandem.engine.model.ModelConfig;
import io.tandem.proto.v1.PrefillResponse;
import io.tandem.proto.v1.Timings;

/** The {@code Prefill} call's messages ↔ {@link PrefillRequest} / {@link PrefillResult}. */
public final class PrefillMessages {
    private PrefillMessages() {}

    public static io.tandem.proto.v1.PrefillRequest toProto(PrefillRequest request) {
        io.tandem.proto.v1.PrefillRequest.Builder m = io.tandem.proto.v1.PrefillRequest.newBuilder()
                .setRequestId(request.requestId())
                .setSampling(SamplingMessages.toProto(request.sampling(), request.seed()))
                .setCacheSalt(request.cacheSalt() == null ? "" : request.cacheSalt());
        for (int id : request.promptTokenIds()) {
            m.addPromptTokenIds(id);
        }
        return m.build();
    }

    /**
     * Checks a request from the router against the served model.
     *
     * @throws InvalidArgumentException naming the field ({@code request_id},
     *         {@code prompt_token_ids[i]}, {@code top_p}, …) when it cannot be served
     */
    public static PrefillRequest fromProto(io.tandem.proto.v1.PrefillRequest m, ModelConfig model) {
        if (m.getRequestId().isEmpty()) {
            throw new InvalidArgumentException("request_id", "request_id must be set");
        }
        int[] prompt = PromptTokens.check(m.getPromptTokenIdsCount(), m::getPromptTokenIds, "prompt_token_ids", model);
        var sampling = SamplingMessages.fromProto(m.getSampling());
        return new PrefillRequest(m.getRequestId(), prompt, sampling, m.getSampling().getSeed(),
                m.getCacheSalt().isEmpty() ? null : m.getCacheSalt());
    }

    /** @param kvAddress the prefill worker's KV data plane, {@code host:port} (see {@link KvHandleMessages#toProto}) */
    public static PrefillResponse toProto(PrefillResult result, String kvAddress) {
        return PrefillResponse.newBuilder()
                .setRequestId(result.requestId())
                .setFirstToken(result.firstToken())
                .setKvHandle(KvHandleMessages.toProto(result.kvHandle(), kvAddress))
                .setTimings(Timings.newBuilder().setQueueNs(result.queueNanos()).setComputeNs(result.computeNanos()))
                .build();
    }

    /** @throws InvalidArgumentException naming the field when the worker's handle is not one */
    public static PrefillResult fromProto(PrefillResponse m) {
        return new PrefillResult(m.getRequestId(), m.getFirstToken(), KvHandleMessages.fromProto(m.getKvHandle()),
                m.getTimings().getQueueNs(), m.getTimings().getComputeNs());
    }
}
