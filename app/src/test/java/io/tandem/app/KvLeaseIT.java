package io.tandem.app;

import static io.tandem.app.FaultToleranceIT.assertCompletion;
import static io.tandem.app.FaultToleranceIT.boxed;
import static io.tandem.app.FaultToleranceIT.commonArgs;
import static io.tandem.app.FaultToleranceIT.complete;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.Context;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.tandem.engine.ReferenceModel;
import io.tandem.proto.v1.FinishReason;
import io.tandem.proto.v1.GenerateRequest;
import io.tandem.proto.v1.GenerateResponse;
import io.tandem.proto.v1.GenerationGrpc;
import io.tandem.proto.v1.SamplingParams;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Leases of exported KV across processes (1 prefill + 1 decode JVM, stories260K): a decode worker
 * renews the leases of the handles it holds while their requests wait, so requests queued for
 * longer than the lease timeout still get their pages; a client's cancellation travels router →
 * decode → prefill and frees the KV on both sides by a release, not by expiry; and the KV transfer
 * and lease metrics of both workers count what happened.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class KvLeaseIT {
    private static ReferenceContinuations reference;
    private static HttpClient http;

    @BeforeAll
    static void start() throws Exception {
        reference = new ReferenceContinuations();
        http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5)).build();
    }

    @AfterAll
    static void stop() {
        http.close();
        reference.close();
    }

    /**
     * Five requests at once; the decode worker runs one sequence at a time and every pull is held
     * 1 s at the prefill worker, so the last request waits about 4 s in the decode queue with a
     * lease of 3 s: without renewals its lease would lapse before its pull (UNKNOWN_LEASE). All five
     * complete with the reference continuation; no lease expired, some were renewed; and both sides
     * count the same bytes and pages, one {@code kv_transfer_seconds} observation per pull.
     */
    @Test
    void shouldRenewTheLeasesOfRequestsWaitingLongerThanTheLeaseTimeoutAndCountTheTransfers() throws Exception {
        Duration leaseTimeout = Duration.ofSeconds(3);
        long serveDelayMillis = 1000;
        int numRequests = 5;
        try (LocalCluster cluster = LocalCluster.start(1, 1, commonArgs(),
                new String[] {"--lease-timeout", String.valueOf(leaseTimeout.toSeconds()), "--kv-serve-delay",
                        String.valueOf(serveDelayMillis)},
                new String[] {"--kv-transfer-timeout", "2", "--max-num-seqs", "1"})) {
            TandemProcess router = cluster.startRouter(1, 1);
            URI base = URI.create("http://" + router.host() + ":" + router.httpPort());
            URI prefill = LocalCluster.metrics(cluster.prefill.getFirst());
            URI decode = LocalCluster.metrics(cluster.decode.getFirst());

            long sent = System.nanoTime();
            List<ReferenceModel.Case> cases = new ArrayList<>();
            List<CompletableFuture<HttpResponse<String>>> responses = new ArrayList<>();
            for (int i = 0; i < numRequests; i++) {
                ReferenceModel.Case c = reference.cases.get(i % reference.cases.size());
                cases.add(c);
                responses.add(complete(http, base, c));
            }
            for (int i = 0; i < numRequests; i++) {
                assertCompletion(responses.get(i).get(60, TimeUnit.SECONDS), cases.get(i), "request " + (i + 1));
            }
            assertThat(Duration.ofNanos(System.nanoTime() - sent)).as("the last request waited longer than a lease")
                    .isGreaterThan(leaseTimeout.plusSeconds(1));

            MetricSamples p = MetricSamples.await(http, prefill, Duration.ofSeconds(10), "all released",
                    m -> m.value("tandem:kv_leases_released_total") == numRequests);
            assertThat(p.value("tandem:kv_leases_granted_total")).isEqualTo(numRequests);
            assertThat(p.value("tandem:kv_leases_expired_total")).isZero();
            assertThat(p.value("tandem:kv_leases_renewed_total")).as("renewed while queued").isPositive();
            assertThat(p.value("tandem:kv_leases_active")).isZero();
            assertThat(p.value("tandem:kv_cache_free_blocks")).isEqualTo(p.value("tandem:kv_cache_total_blocks"));

            MetricSamples d = MetricSamples.scrape(http, decode);
            assertThat(d.value("tandem:kv_lease_renewals_total")).isPositive();
            long expectedPages = 0;
            for (ReferenceModel.Case c : cases) {
                expectedPages += (long) numLayers() * ((c.promptTokenIds().length + 15) / 16);
            }
            assertThat(d.value("tandem:kv_transfer_pages_total", "role=\"decode\"")).isEqualTo(expectedPages);
            assertThat(p.value("tandem:kv_transfer_pages_total", "role=\"prefill\"")).isEqualTo(expectedPages);
            assertThat(d.value("tandem:kv_transfer_bytes_total", "role=\"decode\""))
                    .isEqualTo(p.value("tandem:kv_transfer_bytes_total", "role=\"prefill\"")).isPositive();
            assertThat(d.value("tandem:kv_transfer_seconds_count")).isEqualTo(numRequests);
            assertThat(d.value("tandem:kv_transfer_seconds_sum")).as("each pull held %d ms", serveDelayMillis)
                    .isGreaterThanOrEqualTo(numRequests * serveDelayMillis / 1000.0);
            assertThat(d.text()).doesNotContain("tandem:kv_transfer_failures_total{");
            assertThat(d.value("tandem:kv_load_recomputes_total")).isZero();
        }
    }

    /**
     * A gRPC client cancels after the first token, while the decode worker's pull waits at the
     * prefill worker: the decode worker ends the sequence, frees its blocks and releases the lease,
     * and the prefill worker frees the prompt's blocks, long before the 30 s lease would expire.
     */
    @Test
    void shouldReleaseThePrefillLeaseAndFreeBothWorkersKvWhenAClientCancels() throws Exception {
        try (LocalCluster cluster = LocalCluster.start(1, 1, commonArgs(),
                new String[] {"--lease-timeout", "30", "--kv-serve-delay", "2000"},
                new String[] {"--kv-transfer-timeout", "10"})) {
            TandemProcess router = cluster.startRouter(1, 1);
            URI prefill = LocalCluster.metrics(cluster.prefill.getFirst());
            URI decode = LocalCluster.metrics(cluster.decode.getFirst());
            ReferenceModel.Case c = reference.get("once_upon_a_time");
            GenerateRequest request = GenerateRequest.newBuilder().addAllPromptTokenIds(boxed(c.promptTokenIds()))
                    .setSampling(SamplingParams.newBuilder().setMaxTokens(c.generatedTokenIds().length)).build();
            ManagedChannel channel = Grpc.newChannelBuilderForAddress(router.host(), router.grpcPort(),
                    InsecureChannelCredentials.create()).build();
            Context.CancellableContext call = Context.current().withCancellation();
            long cancelled;
            try {
                Iterator<GenerateResponse> stream = call.call(() -> GenerationGrpc.newBlockingStub(channel)
                        .withDeadlineAfter(60, TimeUnit.SECONDS).generate(request));
                GenerateResponse first = stream.next();
                assertThat(first.getTokenIdsList()).containsExactly(c.generatedTokenIds()[0]);
                assertThat(first.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_UNSPECIFIED);
                MetricSamples.await(http, decode, Duration.ofSeconds(10), "pulling",
                        m -> m.value("tandem:num_requests_waiting") == 1);
                assertThat(MetricSamples.scrape(http, prefill).value("tandem:kv_leases_active")).isEqualTo(1);
                cancelled = System.nanoTime();
                call.cancel(null);
                assertThatThrownBy(() -> {
                    while (stream.hasNext()) {
                        stream.next();
                    }
                }).isInstanceOfSatisfying(StatusRuntimeException.class,
                        e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.CANCELLED));
            } finally {
                call.cancel(null);
                channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
            }

            MetricSamples p = MetricSamples.await(http, prefill, Duration.ofSeconds(10), "prefill KV freed",
                    m -> m.value("tandem:kv_leases_active") == 0
                            && m.value("tandem:kv_cache_free_blocks") == m.value("tandem:kv_cache_total_blocks"));
            assertThat(p.value("tandem:kv_leases_released_total")).as("freed by a release").isEqualTo(1);
            assertThat(p.value("tandem:kv_leases_expired_total")).isZero();
            MetricSamples.await(http, decode, Duration.ofSeconds(10), "decode KV freed",
                    m -> m.value("tandem:kv_cache_free_blocks") == m.value("tandem:kv_cache_total_blocks")
                            && m.value("tandem:num_requests_waiting") == 0 && m.value("tandem:num_requests_running") == 0);
            assertThat(Duration.ofNanos(System.nanoTime() - cancelled)).isLessThan(Duration.ofSeconds(10));
            assertThat(router.stderr()).doesNotContain("Exception");
        }
    }

    /** Layers of stories260K: a page is one layer of one block. */
    private static int numLayers() throws Exception {
        try (var gguf = io.tandem.engine.gguf.GgufFile.open(ReferenceModel.ggufPath())) {
            return gguf.getInt(gguf.getString("general.architecture") + ".block_count");
        }
    }
}
