package io.tandem.engine;

import io.tandem.kvcache.KvHandle;

/** Receives the outcome of a prefill, on the prefill engine thread; must not block. */
public interface PrefillCallback {
    /**
     * For a request with {@link PrefillRequest#earlyHandle()}: the prompt's blocks are allocated and
     * held under the handle's lease, and their pages become final as the prefill computes them (the
     * KV data plane sends each page once it is). Called at most once, before {@link #onPrefilled}
     * (which carries the same handle) or {@link #onFailed}; after a failure the lease is gone.
     * Releasing the lease before {@link #onPrefilled} cancels the prefill.
     */
    default void onKvHandle(KvHandle handle) {}

    void onPrefilled(PrefillResult result);

    /** The prefill failed (e.g. the prompt cannot fit the KV cache, or the engine shut down). */
    void onFailed(Throwable error);
}
