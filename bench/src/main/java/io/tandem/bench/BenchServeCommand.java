package io.tandem.bench;

import java.io.IOException;
import java.io.PrintWriter;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;

/**
 * {@code tandem bench serve}: a load generator for a running server, as {@code vllm bench serve}.
 * Builds the requests from a dataset, sends them on a Poisson (or trace) schedule, prints the
 * result table on stdout, progress and notes on stderr, and optionally saves the figures as JSON.
 * Exit code 0 when the run completed (even if requests failed: the report says so), 1 when the
 * server's models cannot be listed, 2 for invalid options.
 */
@Command(name = "serve", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Load-test a running server (OpenAI HTTP or gRPC) as 'vllm bench serve' does: "
                + "TTFT, TPOT, ITL, E2EL, throughput and goodput.")
final class BenchServeCommand implements Callable<Integer> {

    private static final String DEFAULT_OPENAI_ENDPOINT = "http://127.0.0.1:8000";
    private static final String DEFAULT_GRPC_ENDPOINT = "127.0.0.1:50051";
    private static final int DEFAULT_OUTPUT_LEN = 128;
    /** Exit code when no model was given and the server's cannot be listed. */
    private static final int EXIT_NO_MODEL = 1;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--api", paramLabel = "API", defaultValue = "openai", description = "openai or grpc. Default: ${DEFAULT-VALUE}.")
    String api;

    @Option(names = "--endpoint", paramLabel = "ADDRESS",
            description = "Server address: http://HOST:PORT for openai (default " + DEFAULT_OPENAI_ENDPOINT + "), HOST:PORT for grpc (default "
                    + DEFAULT_GRPC_ENDPOINT + ").")
    String endpoint;

    @Option(names = "--endpoint-type", paramLabel = "TYPE", defaultValue = "completions",
            description = "openai only: completions (token-id prompts) or chat (text prompts). Default: ${DEFAULT-VALUE}.")
    String endpointType;

    @Option(names = "--model", paramLabel = "ID", description = "Model id to request. Default: the first model the server lists.")
    String model;

    @Option(names = "--dataset-name", paramLabel = "NAME", defaultValue = "random",
            description = "random, prefix (random with a shared --prefix-len prefix), sharegpt or mooncake. Default: ${DEFAULT-VALUE}.")
    String datasetName;

    @Option(names = "--dataset-path", paramLabel = "FILE", description = "ShareGPT JSON or Mooncake trace JSONL.")
    Path datasetPath;

    @Option(names = "--num-prompts", paramLabel = "N", defaultValue = "1000",
            description = "Requests to send (for mooncake: at most the trace's first N). Default: ${DEFAULT-VALUE}.")
    int numPrompts;

    @Option(names = "--input-len", paramLabel = "TOKENS", defaultValue = "1024",
            description = "random/prefix: mean prompt length after the prefix. Default: ${DEFAULT-VALUE}.")
    int inputLen;

    @Option(names = "--output-len", paramLabel = "TOKENS",
            description = "Output tokens per request (max_tokens with ignore_eos). Default: " + DEFAULT_OUTPUT_LEN
                    + " for random/prefix; sharegpt: the answer's length; mooncake: the trace's.")
    Integer outputLen;

    @Option(names = "--range-ratio", paramLabel = "R", defaultValue = "0",
            description = "random/prefix: lengths uniform in [len*(1-R), len*(1+R)], 0 <= R < 1. Default: ${DEFAULT-VALUE}.")
    double rangeRatio;

    @Option(names = "--prefix-len", paramLabel = "TOKENS", defaultValue = "0",
            description = "random/prefix: a prefix of this many tokens shared by every request. Default: ${DEFAULT-VALUE}.")
    int prefixLen;

    @Option(names = "--token-id-range", paramLabel = "LO:HI", defaultValue = "259:500",
            description = "Synthetic prompts draw token ids uniformly from [LO, HI). Default: ${DEFAULT-VALUE} "
                    + "(ordinary pieces of stories260K's and Llama 3's vocabularies).")
    String tokenIdRange;

    @Option(names = "--request-rate", paramLabel = "R", defaultValue = "inf",
            description = "Requests/s with Poisson arrivals, or inf to send all at once. Default: ${DEFAULT-VALUE}.")
    String requestRate;

    @Option(names = "--max-concurrency", paramLabel = "N",
            description = "Requests in flight at most; later arrivals wait. Default: no limit.")
    Integer maxConcurrency;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "0", description = "Seed of prompts and arrivals. Default: ${DEFAULT-VALUE}.")
    long seed;

    @Option(names = "--goodput", paramLabel = "KEY:MS", arity = "1..*",
            description = "Service-level objectives for goodput, e.g. ttft:500 tpot:50 e2el:5000 (milliseconds).")
    List<String> goodput = List.of();

    @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "600",
            description = "A request not finished this long after it was sent fails. Default: ${DEFAULT-VALUE}.")
    double timeoutSeconds;

    @Option(names = "--save-result", paramLabel = "FILE", description = "Write the configuration and every figure to this JSON file.")
    Path saveResult;

    @Option(names = "--save-detailed", description = "With --save-result: add per-request lengths, TTFTs, ITLs, E2ELs and errors.")
    boolean saveDetailed;

    /** The requests and when to send them; {@code rate} NaN when a trace schedules them. */
    private record Workload(List<SampleRequest> requests, long[] arrivalOffsetsNanos, double rate) {}

    @Override
    public Integer call() throws IOException, InterruptedException {
        boolean grpc = parseApi();
        boolean chat = parseEndpointType(grpc);
        double rate = parse("--request-rate", () -> ArrivalSchedule.parseRate(requestRate));
        TokenIdRange ids = parse("--token-id-range", () -> TokenIdRange.parse(tokenIdRange));
        GoodputSlo slo = parse("--goodput", () -> GoodputSlo.parse(goodput));
        validateNumbers();
        Duration timeout = Duration.ofNanos(Math.round(timeoutSeconds * 1e9));
        String address = endpoint != null ? endpoint : grpc ? DEFAULT_GRPC_ENDPOINT : DEFAULT_OPENAI_ENDPOINT;
        if (!grpc) {
            address = openAiBase(address).toString();
        }
        try (Backend backend = grpc
                ? new GrpcBackend(address, timeout)
                : new OpenAiBackend(URI.create(address), chat ? OpenAiBackend.EndpointType.CHAT : OpenAiBackend.EndpointType.COMPLETIONS, timeout)) {
            String modelId = model != null ? model : firstModel(backend, address);
            if (modelId == null) {
                return EXIT_NO_MODEL;
            }
            Workload workload = workload(new SplittableRandom(seed), chat ? PromptForm.TEXT : PromptForm.TOKEN_IDS, ids, rate);
            BenchConfig config = new BenchConfig(api, address, grpc ? null : endpointType, modelId, workload.rate(),
                    maxConcurrency == null ? BenchmarkRunner.UNLIMITED_CONCURRENCY : maxConcurrency, workload.requests().size(),
                    datasetName, datasetPath, inputLen, outputLen, rangeRatio, prefixLen, ids, seed, timeout, slo,
                    OffsetDateTime.now().truncatedTo(ChronoUnit.SECONDS));
            run(backend, config, workload);
            return 0;
        }
    }

    /** Sends the workload, prints the table, saves the JSON. */
    private void run(Backend backend, BenchConfig config, Workload workload) throws IOException, InterruptedException {
        PrintWriter err = spec.commandLine().getErr();
        int count = workload.requests().size();
        double rate = workload.rate();
        err.printf("bench: %d requests to %s at %s (%s%s), arrivals %s, max concurrency %s%n", count, config.model(),
                config.endpoint(), config.api(), config.endpointType() == null ? "" : " " + config.endpointType(),
                Double.isNaN(rate) ? "from the trace" : Double.isInfinite(rate) ? "all at once" : "Poisson at " + rate + " req/s",
                config.maxConcurrency() == BenchmarkRunner.UNLIMITED_CONCURRENCY ? "unlimited" : config.maxConcurrency());
        ProgressLine progress = new ProgressLine(err, System.console() != null && System.console().isTerminal(), count);
        BenchmarkRunner.Run run = BenchmarkRunner.run(backend, config.model(), workload.requests(), workload.arrivalOffsetsNanos(),
                config.maxConcurrency(), progress);
        BenchmarkMetrics metrics = BenchmarkMetrics.compute(run.results(), run.durationNanos(), config.goodput());
        ResultTable.print(spec.commandLine().getOut(), config, metrics);
        if (saveResult != null) {
            ResultJson.write(saveResult, ResultJson.toJson(config, metrics, run.results(), saveDetailed));
            err.println("bench: saved the result to " + saveResult);
        }
        if (metrics.completed() == 0) {
            err.println("bench: every request failed; see the failure reasons above (wrong --model or --endpoint?)");
        }
    }

    /** The first model the server lists, or {@code null} after saying on stderr why there is none. */
    private String firstModel(Backend backend, String address) throws InterruptedException {
        PrintWriter err = spec.commandLine().getErr();
        try {
            List<String> models = backend.listModels();
            if (models.isEmpty()) {
                err.println("bench: the server at " + address + " lists no models; pass --model");
                return null;
            }
            return models.getFirst();
        } catch (IOException e) {
            err.println("bench: cannot list the models of " + address + " (pass --model to skip): " + e.getMessage());
            return null;
        }
    }

    private Workload workload(SplittableRandom root, PromptForm form, TokenIdRange ids, double rate) throws IOException {
        if (datasetName.equals("mooncake")) {
            if (!Double.isInfinite(rate)) {
                throw new ParameterException(spec.commandLine(),
                        "--request-rate does not apply to mooncake: the trace's timestamps schedule the arrivals");
            }
            MooncakeTrace trace = parse("--dataset-path", () -> MooncakeTrace.read(requirePath(), numPrompts));
            return new Workload(trace.requests(ids, form, seed), trace.arrivalOffsetsNanos(), Double.NaN);
        }
        // Separate streams: the prompts do not change when only the rate does.
        SplittableRandom prompts = root.split();
        SplittableRandom arrivals = root.split();
        List<SampleRequest> requests = switch (datasetName) {
            case "random", "prefix" -> parse("--input-len/--output-len/--range-ratio/--prefix-len", () -> new RandomDataset(inputLen,
                    outputLen == null ? DEFAULT_OUTPUT_LEN : outputLen, rangeRatio, prefixLen, ids, form)).sample(numPrompts, prompts);
            case "sharegpt" -> parse("--dataset-path", () -> ShareGptDataset.load(requirePath(), numPrompts, outputLen, prompts));
            default -> throw new ParameterException(spec.commandLine(),
                    "--dataset-name must be random, prefix, sharegpt or mooncake, got '" + datasetName + "'");
        };
        return new Workload(requests, ArrivalSchedule.poisson(rate, requests.size(), arrivals), rate);
    }

    private boolean parseApi() {
        return switch (api) {
            case "openai" -> false;
            case "grpc" -> true;
            default -> throw new ParameterException(spec.commandLine(), "--api must be openai or grpc, got '" + api + "'");
        };
    }

    private boolean parseEndpointType(boolean grpc) {
        boolean chat = switch (endpointType) {
            case "completions" -> false;
            case "chat" -> true;
            default -> throw new ParameterException(spec.commandLine(), "--endpoint-type must be completions or chat, got '" + endpointType + "'");
        };
        if (chat && grpc) {
            throw new ParameterException(spec.commandLine(), "--endpoint-type chat applies to --api openai only");
        }
        return chat;
    }

    private void validateNumbers() {
        if (numPrompts < 1) {
            throw new ParameterException(spec.commandLine(), "--num-prompts must be >= 1, got " + numPrompts);
        }
        if (maxConcurrency != null && maxConcurrency < 1) {
            throw new ParameterException(spec.commandLine(), "--max-concurrency must be >= 1, got " + maxConcurrency);
        }
        if (!(timeoutSeconds > 0) || Double.isInfinite(timeoutSeconds)) {
            throw new ParameterException(spec.commandLine(), "--timeout must be a positive number of seconds, got " + timeoutSeconds);
        }
        if (outputLen != null && outputLen < 1) {
            throw new ParameterException(spec.commandLine(), "--output-len must be >= 1, got " + outputLen);
        }
        if (datasetName.equals("prefix") && prefixLen < 1) {
            throw new ParameterException(spec.commandLine(), "--dataset-name prefix needs --prefix-len >= 1");
        }
    }

    private Path requirePath() {
        if (datasetPath == null) {
            throw new ParameterException(spec.commandLine(), "--dataset-name " + datasetName + " needs --dataset-path");
        }
        return datasetPath;
    }

    /** {@code address} as an HTTP base URI; {@code http://} is assumed when no scheme is given. */
    private URI openAiBase(String address) {
        String withScheme = address.contains("://") ? address : "http://" + address;
        try {
            URI uri = URI.create(withScheme);
            if (uri.getHost() == null) {
                throw new IllegalArgumentException("no host");
            }
            return uri;
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), "--endpoint must be http://HOST:PORT, got '" + address + "'");
        }
    }

    /** A parsing step that may read a file. */
    @FunctionalInterface
    private interface Parser<T> {
        T parse() throws IOException;
    }

    /** Runs a parser whose {@link IllegalArgumentException} becomes a usage error naming {@code option}. */
    private <T> T parse(String option, Parser<T> parser) throws IOException {
        try {
            return parser.parse();
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), option + ": " + e.getMessage(), e);
        }
    }
}
