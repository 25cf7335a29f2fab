package io.tandem.app;

import picocli.CommandLine.Option;

/** Options every worker process takes: where it listens and what it calls itself. */
final class WorkerOptions {
    @Option(names = "--host", paramLabel = "HOST", defaultValue = "127.0.0.1", description = "Address to bind. Default: ${DEFAULT-VALUE}.")
    String host;

    @Option(names = "--advertise-host", paramLabel = "HOST",
            description = "Name other processes reach this one by (default: --host, or this machine's name when --host is a wildcard).")
    String advertiseHost;

    @Option(names = "--worker-id", paramLabel = "ID",
            description = "Id in load reports (and, for prefill, in KV handles). Default: ROLE-HOST-GRPCPORT (ROLE-pidPID with port 0).")
    String workerId;

    /** The host to advertise: {@code --advertise-host}, else {@code --host} unless it is a wildcard, else this machine's name. */
    String advertisedHost() throws java.net.UnknownHostException {
        if (advertiseHost != null) {
            return advertiseHost;
        }
        if (host.equals("0.0.0.0") || host.equals("::") || host.equals("[::]")) {
            return java.net.InetAddress.getLocalHost().getHostName();
        }
        return host;
    }

    /** {@code --worker-id}, else one made of the role, host and port (unique per machine and port). */
    String workerId(String role, int grpcPort) {
        if (workerId != null) {
            return workerId;
        }
        return grpcPort != 0 ? role + "-" + host + "-" + grpcPort : role + "-pid" + ProcessHandle.current().pid();
    }
}
