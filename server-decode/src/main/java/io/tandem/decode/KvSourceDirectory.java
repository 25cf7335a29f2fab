package io.tandem.decode;

import io.tandem.control.HostPort;
import io.tandem.engine.InvalidArgumentException;
import java.net.InetSocketAddress;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Where each prefill worker serves its KV pages, learned from the {@code kv_address} of the handles
 * that arrive with {@code Decode} calls, so a decode worker needs no list of prefill workers: the
 * network transport resolves a handle's {@code workerId} here ({@link #resolve}). The latest
 * address wins (a restarted worker may move); a stale handle is then refused by the worker itself,
 * by its epoch.
 */
public final class KvSourceDirectory {
    private final Map<String, HostPort> addresses = new ConcurrentHashMap<>();

    /**
     * Records {@code workerId}'s data-plane address; an empty address (in-process hand-off) is ignored.
     *
     * @throws InvalidArgumentException ({@code kv_handle.kv_address}) when it is not {@code host:port}
     */
    public void learn(String workerId, String kvAddress) {
        if (kvAddress.isEmpty()) {
            return;
        }
        HostPort address;
        try {
            address = HostPort.parse(kvAddress);
        } catch (IllegalArgumentException e) {
            throw new InvalidArgumentException("kv_handle.kv_address", "kv_handle.kv_address: " + e.getMessage());
        }
        addresses.put(workerId, address);
    }

    /** The last address learned for {@code workerId}. */
    public Optional<HostPort> address(String workerId) {
        return Optional.ofNullable(addresses.get(workerId));
    }

    /**
     * The socket address to pull {@code workerId}'s pages from (unresolved; resolved on connect).
     *
     * @throws IllegalStateException if no handle of that worker has been seen
     */
    public InetSocketAddress resolve(String workerId) {
        HostPort address = addresses.get(workerId);
        if (address == null) {
            throw new IllegalStateException("no KV data-plane address known for prefill worker '" + workerId + "'");
        }
        return address.toSocketAddress();
    }
}
