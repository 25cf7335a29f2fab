package io.tandem.engine;

/** Receives the outcome of a prefill, on the prefill engine thread; must not block. */
public interface PrefillCallback {
    void onPrefilled(PrefillResult result);

    /** The prefill failed (e.g. the prompt cannot fit the KV cache, or the engine shut down). */
    void onFailed(Throwable error);
}
