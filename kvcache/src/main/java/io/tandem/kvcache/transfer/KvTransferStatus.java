package io.tandem.kvcache.transfer;

/**
 * Outcome of a KV pull. {@link #OK} and the server-side errors travel in {@code ERROR} frames
 * (their {@link #wireCode()} is the frame's {@code code} field, see {@link KvFrame}); the
 * client-side ones are detected by the puller and never sent.
 */
public enum KvTransferStatus {
    /** The pull is valid (never sent in an {@code ERROR} frame). */
    OK(0),
    /** The handle's epoch is not the serving worker's current epoch: the worker restarted. */
    STALE_EPOCH(1),
    /** No live lease with that id: never granted, already released, or expired. */
    UNKNOWN_LEASE(2),
    /** A block id is outside the server's storage or not held by the lease. */
    BAD_BLOCK_ID(3),
    /** {@code layerFrom/layerTo} is not a non-empty range inside {@code [0, numLayers)}. */
    BAD_LAYER_RANGE(4),
    /** The puller's page size differs from the server's: different KV geometry or dtype. */
    PAGE_SIZE_MISMATCH(5),
    /** The server failed for a reason of its own (the message says which). */
    INTERNAL(6),
    /**
     * The lease's prefill ended (cancelled, failed, worker shutting down) before the pages asked
     * for were computed: they never will be.
     */
    PREFILL_ABORTED(7),
    /** Client side: a {@code PAGES} payload does not match its CRC32C. */
    CRC_MISMATCH(100),
    /** Client side: the data-plane connection could not be made or was lost. */
    CONNECTION_LOST(101),
    /** Client side: the peer sent a frame that breaks the protocol. */
    PROTOCOL_ERROR(102);

    private final int wireCode;

    KvTransferStatus(int wireCode) {
        this.wireCode = wireCode;
    }

    /** The code in an {@code ERROR} frame. */
    public int wireCode() {
        return wireCode;
    }

    /** The status of an {@code ERROR} frame's code; an unknown code reads as {@link #INTERNAL}. */
    public static KvTransferStatus fromWireCode(int code) {
        for (KvTransferStatus status : values()) {
            if (status.wireCode == code) {
                return status;
            }
        }
        return INTERNAL;
    }
}
