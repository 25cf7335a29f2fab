package io.tandem.engine;

/** Where a {@link Sequence} is in its engine. */
public enum SequenceStatus {
    /** Admitted, waiting for KV blocks or its first step. */
    WAITING,
    /** On a decode worker: its prompt KV is being pulled from the prefill worker. */
    PULLING_KV,
    /** Scheduled every step. */
    RUNNING,
    /** On a prefill worker: prompt done, blocks kept under a lease for the decode worker. */
    EXPORTED,
    /** Ended; blocks freed. */
    FINISHED
}
