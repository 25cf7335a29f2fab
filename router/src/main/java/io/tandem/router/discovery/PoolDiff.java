package io.tandem.router.discovery;

import io.tandem.control.HostPort;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.Set;

/**
 * What one discovery round changes: the endpoints to probe (found in DNS, not yet in a pool) and
 * the endpoints whose workers leave their pool (in a pool through discovery, no longer in DNS).
 * Endpoints given statically ({@code --prefill}, {@code --decode}) are never probed again and never
 * leave.
 *
 * @param joined endpoints found and not known, in the order found
 * @param left   endpoints known and not found, in the order known
 */
record PoolDiff(Set<HostPort> joined, Set<HostPort> left) {
    PoolDiff {
        joined = Collections.unmodifiableSet(new LinkedHashSet<>(joined));
        left = Collections.unmodifiableSet(new LinkedHashSet<>(left));
    }

    /**
     * @param known    endpoints whose workers discovery put in a pool
     * @param found    endpoints the round's lookups returned
     * @param excluded the static workers' endpoints (their names and their addresses)
     */
    static PoolDiff between(Set<HostPort> known, Set<HostPort> found, Set<HostPort> excluded) {
        Set<HostPort> joined = new LinkedHashSet<>(found);
        joined.removeAll(known);
        joined.removeAll(excluded);
        Set<HostPort> left = new LinkedHashSet<>(known);
        left.removeAll(found);
        return new PoolDiff(joined, left);
    }

    boolean isEmpty() {
        return joined.isEmpty() && left.isEmpty();
    }
}
