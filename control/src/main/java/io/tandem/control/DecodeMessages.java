package io.tandem.control;

import io.tandem.engine.DecodeRequest;
import io.tandem.engine.InvalidArgumentException;
import io.tandem.engine.model.ModelConfig;
import io.tandem.kvcache.KvHandle;

/** The {@code Decode} call's request ↔ {@link DecodeRequest}. */
public final class DecodeMessages {
    private DecodeMessages() {}

    /** @param kvAddress the KV data plane of the handle's owner, {@code host:port}, or {@code ""} */
    public static io.tandem.proto.v1.DecodeRequest toProto(DecodeRequest request, String kvAddress) {
        io.tandem.proto.v1.DecodeRequest.Builder m = io.tandem.proto.v1.DecodeRequest.newBuilder()
                .setRequestId(request.requestId())
                .setFirstToken(request.firstTokenPending() ? 0 : request.firstToken())
                .setKvHandle(KvHandleMessages.toProto(request.kvHandle(), kvAddress))
                .setSampling(SamplingMessages.toProto(request.sampling(), request.seed()));
        for (int id : request.promptTokenIds()) {
            m.addPromptTokenIds(id);
        }
        return m.build();
    }

    /**
     * Checks a request from the router against the served model; the handle's address is read
     * separately ({@code m.getKvHandle().getKvAddress()}).
     *
     * @throws InvalidArgumentException naming the field ({@code request_id},
     *         {@code prompt_token_ids[i]}, {@code first_token}, {@code kv_handle.*}, {@code top_p}, …)
     */
    public static DecodeRequest fromProto(io.tandem.proto.v1.DecodeRequest m, ModelConfig model) {
        return fromProto(m, model, false);
    }

    /**
     * The first message of {@code DecodeFromEarlyHandle}: as {@link #fromProto(io.tandem.proto.v1.DecodeRequest,
     * ModelConfig)}, but {@code first_token} is not read; the request's is
     * {@link DecodeRequest#FIRST_TOKEN_PENDING}.
     */
    public static DecodeRequest fromEarlyHandleProto(io.tandem.proto.v1.DecodeRequest m, ModelConfig model) {
        return fromProto(m, model, true);
    }

    /**
     * The second message of {@code DecodeFromEarlyHandle}.
     *
     * @throws InvalidArgumentException ({@code first_token}) outside the vocabulary
     */
    public static int checkFirstToken(int token, ModelConfig model) {
        return PromptTokens.checkToken(token, "first_token", model);
    }

    private static DecodeRequest fromProto(io.tandem.proto.v1.DecodeRequest m, ModelConfig model, boolean early) {
        if (m.getRequestId().isEmpty()) {
            throw new InvalidArgumentException("request_id", "request_id must be set");
        }
        int[] prompt = PromptTokens.check(m.getPromptTokenIdsCount(), m::getPromptTokenIds, "prompt_token_ids", model);
        int first = early ? DecodeRequest.FIRST_TOKEN_PENDING : PromptTokens.checkToken(m.getFirstToken(), "first_token", model);
        if (!m.hasKvHandle()) {
            throw new InvalidArgumentException("kv_handle", "kv_handle must be set");
        }
        KvHandle handle = KvHandleMessages.fromProto(m.getKvHandle());
        if (handle.numTokens() != prompt.length) {
            throw new InvalidArgumentException("kv_handle.num_tokens", "kv_handle.num_tokens = " + handle.numTokens()
                    + " but the prompt has " + prompt.length + " tokens");
        }
        var sampling = SamplingMessages.fromProto(m.getSampling());
        return new DecodeRequest(m.getRequestId(), prompt, first, handle, sampling, m.getSampling().getSeed());
    }
}
