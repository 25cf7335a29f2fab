package io.tandem.app;

import io.tandem.engine.EngineConfig;
import io.tandem.engine.KvLoadFailurePolicy;
import io.tandem.kvcache.KvDtype;
import java.time.Duration;
import picocli.CommandLine.Option;

/** Engine sizes, named as vLLM's engine arguments. */
final class EngineOptions {
    @Option(names = "--block-size", paramLabel = "TOKENS", defaultValue = "16", description = "Tokens per KV block. Default: ${DEFAULT-VALUE}.")
    int blockSize;

    @Option(names = "--kv-dtype", paramLabel = "TYPE", defaultValue = "f32", description = "KV cache element type. Default: ${DEFAULT-VALUE}.")
    String kvDtype;

    @Option(names = "--kv-cache-memory", paramLabel = "MIB", defaultValue = "1024",
            description = "KV cache memory per engine in MiB (capped at max-num-seqs full contexts). Default: ${DEFAULT-VALUE}.")
    long kvCacheMib;

    @Option(names = "--max-num-seqs", paramLabel = "N", defaultValue = "64", description = "Sequences per step. Default: ${DEFAULT-VALUE}.")
    int maxNumSeqs;

    @Option(names = "--max-num-batched-tokens", paramLabel = "N", defaultValue = "512",
            description = "Tokens per prefill step (chunked prefill budget). Default: ${DEFAULT-VALUE}.")
    int maxNumBatchedTokens;

    @Option(names = "--enable-prefix-caching", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Reuse the KV of cached full-block prompt prefixes (vLLM's flag; on by default).")
    boolean enablePrefixCaching;

    @Option(names = "--threads", paramLabel = "N", defaultValue = "0",
            description = "Compute threads of the CPU backend; 0 = all processors.")
    int threads;

    /** Lease timeout of exported KV when no {@code --lease-timeout} applies (in-process hand-off). */
    static final Duration DEFAULT_LEASE_TIMEOUT = Duration.ofSeconds(30);

    /** The engine configuration with the default lease timeout and failed KV pulls ending their request. */
    EngineConfig toConfig() {
        return toConfig(DEFAULT_LEASE_TIMEOUT, KvLoadFailurePolicy.FAIL);
    }

    /**
     * @param leaseTimeout        how long a prefill engine keeps exported KV unreleased
     * @param kvLoadFailurePolicy what a decode engine does when a KV pull fails
     */
    EngineConfig toConfig(Duration leaseTimeout, KvLoadFailurePolicy kvLoadFailurePolicy) {
        return new EngineConfig(blockSize, KvDtype.parse(kvDtype), kvCacheMib << 20, maxNumSeqs, maxNumBatchedTokens,
                1024, leaseTimeout, enablePrefixCaching, kvLoadFailurePolicy);
    }

    int threadCount() {
        return threads > 0 ? threads : Runtime.getRuntime().availableProcessors();
    }
}
