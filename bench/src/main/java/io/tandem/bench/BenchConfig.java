package io.tandem.bench;

import java.nio.file.Path;
import java.time.Duration;
import java.time.OffsetDateTime;

/**
 * What a benchmark run was asked to do, saved beside its figures.
 *
 * @param api            {@code openai} or {@code grpc}
 * @param endpoint       base URL ({@code http://host:port}) or gRPC target ({@code host:port})
 * @param endpointType   {@code completions} or {@code chat}; {@code null} for gRPC
 * @param model          model id the requests named
 * @param requestRate    requests/s, or {@link ArrivalSchedule#INFINITE_RATE}; NaN when a trace
 *                       schedules the arrivals
 * @param maxConcurrency requests in flight at most, or {@link BenchmarkRunner#UNLIMITED_CONCURRENCY}
 * @param numPrompts     requests sent
 * @param datasetName    {@code random}, {@code prefix}, {@code sharegpt} or {@code mooncake}
 * @param datasetPath    the ShareGPT or Mooncake file; {@code null} for synthetic datasets
 * @param inputLen       mean prompt length after the prefix (synthetic datasets)
 * @param outputLen      output length asked for, {@code null} when the dataset gives it per request
 * @param rangeRatio     length spread of the random dataset
 * @param prefixLen      shared prefix length (synthetic datasets)
 * @param tokenIdRange   ids synthetic prompts draw from
 * @param seed           seed of datasets and arrivals
 * @param timeout        per request
 * @param goodput        goodput objectives
 * @param date           when the run started
 */
public record BenchConfig(
        String api,
        String endpoint,
        String endpointType,
        String model,
        double requestRate,
        int maxConcurrency,
        int numPrompts,
        String datasetName,
        Path datasetPath,
        int inputLen,
        Integer outputLen,
        double rangeRatio,
        int prefixLen,
        TokenIdRange tokenIdRange,
        long seed,
        Duration timeout,
        GoodputSlo goodput,
        OffsetDateTime date) {}
