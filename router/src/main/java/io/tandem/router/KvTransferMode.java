package io.tandem.router;

/**
 * When the router starts the decode side of a request ({@code --kv-transfer-mode}).
 *
 * <ul>
 * <li>{@link #AFTER_PREFILL}: the prefill returns its first token and KV handle when it has
 *     finished; then the decode worker is called and pulls every page.</li>
 * <li>{@link #OVERLAP}: the prefill worker hands out the KV handle as soon as the prompt's blocks
 *     are allocated ({@code PrefillWithEarlyHandle}); the router starts the decode worker on it at
 *     once ({@code DecodeFromEarlyHandle}), which pulls each page as soon as the prefill has
 *     computed it, while later layers and chunks compute, and gets the first token when the
 *     prefill samples it. A request of {@code max_tokens} 1 needs no decode and goes as
 *     {@link #AFTER_PREFILL}.</li>
 * </ul>
 */
public enum KvTransferMode {
    AFTER_PREFILL,
    OVERLAP;

    /**
     * @param name {@code after_prefill} or {@code overlap}
     * @throws IllegalArgumentException naming the option and the accepted values
     */
    public static KvTransferMode parse(String name) {
        return switch (name) {
            case "after_prefill" -> AFTER_PREFILL;
            case "overlap" -> OVERLAP;
            default -> throw new IllegalArgumentException("--kv-transfer-mode must be after_prefill or overlap, got '"
                    + name + "'");
        };
    }
}
