package io.tandem.engine;

/**
 * What a decode worker does when pulling a prompt's KV from the prefill worker fails or times
 * out ({@code --kv-load-failure-policy}, as vLLM's KV connector names it).
 */
public enum KvLoadFailurePolicy {
    /** End the request with an error naming the failed hand-off. */
    FAIL,
    /** Compute the prompt's KV locally (as after a preemption) and continue the sequence. */
    RECOMPUTE;

    /**
     * Parses {@code fail} / {@code recompute}.
     *
     * @throws IllegalArgumentException naming the value
     */
    public static KvLoadFailurePolicy parse(String name) {
        for (KvLoadFailurePolicy p : values()) {
            if (p.name().equalsIgnoreCase(name)) {
                return p;
            }
        }
        throw new IllegalArgumentException("unknown --kv-load-failure-policy '" + name + "' (expected fail or recompute)");
    }
}
