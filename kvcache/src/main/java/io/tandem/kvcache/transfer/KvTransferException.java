package io.tandem.kvcache.transfer;

/**
 * A KV pull failed for a reason the data plane names: a server-side error code, a CRC mismatch,
 * a lost connection or a protocol violation. The message starts with the status name, so logs
 * and clients see the code; {@link #status()} lets a caller pick a policy (e.g. re-prefill on
 * {@link KvTransferStatus#STALE_EPOCH}).
 */
public final class KvTransferException extends Exception {
    private static final long serialVersionUID = 1L;

    private final KvTransferStatus status;

    public KvTransferException(KvTransferStatus status, String message) {
        this(status, message, null);
    }

    public KvTransferException(KvTransferStatus status, String message, Throwable cause) {
        super(status + ": " + message, cause);
        if (status == KvTransferStatus.OK) {
            throw new IllegalArgumentException("a transfer exception needs an error status, got OK");
        }
        this.status = status;
    }

    public KvTransferStatus status() {
        return status;
    }
}
