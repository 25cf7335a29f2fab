package io.tandem.bench;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code tandem bench}: load generators. Its one subcommand, {@code serve}, benchmarks a running server. */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Benchmark a running server (see 'bench serve').",
        subcommands = {BenchServeCommand.class})
public final class BenchCommand implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }
}
