package io.tandem.router.discovery;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * A DNS name whose addresses are workers ({@code tandem router --discovery dns:NAME[:PORT]}), as a
 * Kubernetes headless Service publishes them: one A/AAAA record per ready pod. Every address of the
 * name is probed at each of {@link #ports()}; what answers as a prefill or decode worker joins that
 * pool.
 *
 * @param name  a DNS name (RFC 1123 labels, underscores allowed), without a trailing port
 * @param ports the workers' gRPC ports, each in [1, 65535]: the one written, or the default gRPC
 *              ports of both roles when none is
 */
public record DiscoveryTarget(String name, List<Integer> ports) {
    /** The scheme of a DNS target; the only one so far. */
    public static final String DNS_SCHEME = "dns:";

    private static final Pattern HOST_NAME = Pattern.compile(
            "[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\\.?");
    private static final int MAX_NAME_LENGTH = 253;

    /** @throws IllegalArgumentException naming the field and value that are not valid */
    public DiscoveryTarget {
        if (name == null || name.length() > MAX_NAME_LENGTH || !HOST_NAME.matcher(name).matches()) {
            throw new IllegalArgumentException("'" + name + "' is not a DNS name");
        }
        if (ports == null || ports.isEmpty()) {
            throw new IllegalArgumentException("no port for " + name);
        }
        for (int p : ports) {
            if (p < 1 || p > 65535) {
                throw new IllegalArgumentException("port " + p + " of " + name + " is not in [1, 65535]");
            }
        }
        ports = List.copyOf(ports);
    }

    /**
     * Parses {@code dns:NAME} or {@code dns:NAME:PORT}.
     *
     * @param defaultPorts the ports of a target written without one (the workers' default gRPC ports)
     * @throws IllegalArgumentException quoting {@code text} and saying what is wrong with it
     */
    public static DiscoveryTarget parse(String text, List<Integer> defaultPorts) {
        if (!text.startsWith(DNS_SCHEME)) {
            throw new IllegalArgumentException("'" + text + "' is not dns:NAME[:PORT] (the only scheme is dns:)");
        }
        String rest = text.substring(DNS_SCHEME.length());
        int colon = rest.indexOf(':');
        String name = colon < 0 ? rest : rest.substring(0, colon);
        List<Integer> ports = defaultPorts;
        if (colon >= 0) {
            String port = rest.substring(colon + 1);
            if (!port.matches("[0-9]{1,5}")) {
                throw new IllegalArgumentException("'" + text + "' is not dns:NAME[:PORT]: the port '" + port
                        + "' is not a number in [1, 65535]");
            }
            ports = List.of(Integer.parseInt(port));
        }
        try {
            return new DiscoveryTarget(name, ports);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("'" + text + "' is not dns:NAME[:PORT]: " + e.getMessage());
        }
    }

    /** Parses a comma-separated list of targets ({@link #parse}); blanks around commas are ignored. */
    public static List<DiscoveryTarget> parseList(String text, List<Integer> defaultPorts) {
        List<DiscoveryTarget> out = new ArrayList<>();
        for (String part : text.split(",")) {
            out.add(parse(part.strip(), defaultPorts));
        }
        return out;
    }

    /** {@code dns:NAME:PORT}, or {@code dns:NAME} with several ports. */
    @Override
    public String toString() {
        return DNS_SCHEME + name + (ports.size() == 1 ? ":" + ports.getFirst() : "");
    }
}
