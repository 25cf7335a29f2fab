package io.tandem.app;

import io.tandem.bench.BenchCommand;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code tandem} command: {@code serve} (all in one JVM), the roles of a disaggregated deployment
 * ({@code router}, {@code prefill}, {@code decode}), {@code generate}, {@code export-dummy}, {@code bench}.
 */
@Command(name = "tandem", mixinStandardHelpOptions = true, version = "tandem 0.1.0",
        description = "Disaggregated LLM inference server: a prefill pool hands the paged KV cache to decode workers.",
        subcommands = {ServeCommand.class, RouterCommand.class, PrefillCommand.class, DecodeCommand.class,
                GenerateCommand.class, ExportDummyCommand.class, BenchCommand.class})
public final class TandemCommand implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    public static void main(String[] args) {
        System.exit(new CommandLine(new TandemCommand()).execute(args));
    }
}
