package io.tandem.engine;

/**
 * Receives one decoding sequence's tokens, on the decode engine thread; implementations must not
 * block. Calls: {@link #onToken} per generated token (the first token, sampled at prefill, is not
 * repeated), then exactly one of {@link #onFinish} / {@link #onError}.
 */
public interface TokenSink {
    void onToken(int tokenId);

    void onFinish(FinishReason reason);

    void onError(Throwable error);
}
