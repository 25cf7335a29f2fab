package io.tandem.app;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tandem.router.discovery.DiscoveryTarget;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * {@code tandem router}'s worker options as picocli parses and checks them, before anything starts:
 * a bad value is a usage error (exit 2) naming the option and the value.
 */
class RouterCommandTest {

    @Test
    void shouldParseRepeatedAndCommaSeparatedDiscoveryTargets() {
        RouterCommand router = new RouterCommand();
        new CommandLine(router).parseArgs("--discovery", "dns:prefill.tandem.svc:50061,dns:decode.tandem.svc:50071",
                "--discovery", "dns:workers", "--discovery-interval", "0.5");

        assertThat(router.discovery).containsExactly(new DiscoveryTarget("prefill.tandem.svc", List.of(50061)),
                new DiscoveryTarget("decode.tandem.svc", List.of(50071)),
                new DiscoveryTarget("workers", List.of(Integer.parseInt(PrefillCommand.DEFAULT_GRPC_PORT),
                        Integer.parseInt(DecodeCommand.DEFAULT_GRPC_PORT))));
        assertThat(router.discoveryIntervalSeconds).isEqualTo(0.5);
        assertThat(router.prefill).isNull();
    }

    @Test
    void shouldRejectADiscoveryValueThatIsNotDnsNamePortNamingOptionAndValue() {
        assertThatThrownBy(() -> new CommandLine(new RouterCommand()).parseArgs("--discovery", "srv:workers"))
                .isInstanceOf(CommandLine.ParameterException.class)
                .hasMessageContaining("--discovery")
                .hasMessageContaining("'srv:workers' is not dns:NAME[:PORT]");
        assertThatThrownBy(() -> new CommandLine(new RouterCommand()).parseArgs("--discovery", "dns:workers:99999"))
                .isInstanceOf(CommandLine.ParameterException.class)
                .hasMessageContaining("--discovery")
                .hasMessageContaining("port 99999 of workers is not in [1, 65535]");
    }

    @Test
    void shouldExitWithAUsageErrorWithoutWorkersOrDiscovery() {
        Run run = execute("--decode", "127.0.0.1:50071");

        assertThat(run.exitCode).isEqualTo(2);
        assertThat(run.err).contains("Missing required option: '--prefill' (or '--discovery=dns:NAME[:PORT]')");
    }

    @Test
    void shouldExitWithAUsageErrorForADiscoveryIntervalThatIsNotPositive() {
        Run run = execute("--discovery", "dns:workers", "--discovery-interval", "0");

        assertThat(run.exitCode).isEqualTo(2);
        assertThat(run.err).contains("--discovery-interval must be > 0 and <= 3600 seconds, got 0.0");
    }

    @Test
    void shouldExitWithAUsageErrorForABadStaticWorkerNamingTheOption() {
        Run run = execute("--prefill", "127.0.0.1", "--decode", "127.0.0.1:50071");

        assertThat(run.exitCode).isEqualTo(2);
        assertThat(run.err).contains("Invalid value for option '--prefill': '127.0.0.1' is not host:port");
    }

    @Test
    void shouldDescribeDiscoveryInTheHelp() {
        StringWriter out = new StringWriter();
        CommandLine cmd = new CommandLine(new TandemCommand());
        cmd.setOut(new PrintWriter(out));

        assertThat(cmd.execute("router", "--help")).isZero();
        assertThat(out.toString()).contains("--discovery=dns:NAME[:PORT]").contains("--discovery-interval=SECONDS")
                .contains("Kubernetes headless");
    }

    private record Run(int exitCode, String err) {}

    private static Run execute(String... routerArgs) {
        StringWriter err = new StringWriter();
        CommandLine cmd = new CommandLine(new TandemCommand());
        cmd.setErr(new PrintWriter(err));
        String[] args = new String[routerArgs.length + 1];
        args[0] = "router";
        System.arraycopy(routerArgs, 0, args, 1, routerArgs.length);
        int exit = cmd.execute(args);
        return new Run(exit, err.toString());
    }
}
