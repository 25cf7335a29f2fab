package io.tandem.router.worker;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The KV data-plane address of each prefill worker, as its handles advertise it: the router learns
 * it from {@code Prefill} responses and passes it on with {@code Decode} calls, so that a decode
 * worker can pull pages from any prefill worker without being configured with them. (The engine's
 * {@link io.tandem.kvcache.KvHandle} carries no address; this carries it across the router.) One
 * book is shared by all the gRPC worker clients of a router.
 */
public final class KvAddressBook {
    private final Map<String, String> addresses = new ConcurrentHashMap<>();

    /** Records {@code workerId}'s address ({@code host:port}); empty addresses are ignored. */
    public void learn(String workerId, String kvAddress) {
        if (!kvAddress.isEmpty()) {
            addresses.put(workerId, kvAddress);
        }
    }

    /** The last address {@code workerId} advertised, or {@code ""} if none is known. */
    public String address(String workerId) {
        return addresses.getOrDefault(workerId, "");
    }
}
