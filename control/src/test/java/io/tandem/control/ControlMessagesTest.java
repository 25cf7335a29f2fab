package io.tandem.control;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.tandem.engine.DecodeRequest;
import io.tandem.engine.EngineStats;
import io.tandem.engine.InvalidArgumentException;
import io.tandem.engine.PrefillRequest;
import io.tandem.engine.PrefillResult;
import io.tandem.engine.backend.RopeStyle;
import io.tandem.engine.model.ModelConfig;
import io.tandem.engine.sampling.SamplingParams;
import io.tandem.kvcache.CachedBlockHashes;
import io.tandem.kvcache.KvCacheSpec;
import io.tandem.kvcache.KvCacheStorage;
import io.tandem.kvcache.KvDtype;
import io.tandem.kvcache.KvHandle;
import io.tandem.kvcache.PageSummaries;
import io.tandem.proto.v1.KvPageSummaries;
import io.tandem.proto.v1.LoadReport;
import io.tandem.proto.v1.PrefillResponse;
import io.tandem.proto.v1.WorkerRole;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CancellationException;
import org.junit.jupiter.api.Test;

/** Worker messages ↔ engine records: every field survives the round trip, and bad input names its field. */
class ControlMessagesTest {
    private static final ModelConfig MODEL = new ModelConfig("llama", 64, 172, 5, 8, 4, 8, 512, 256, 1e-5f, 10000f,
            RopeStyle.NORMAL, 8);
    private static final KvCacheSpec SPEC = new KvCacheSpec(5, 4, 8, 16, KvDtype.F16);
    private static final SamplingParams SAMPLING = new SamplingParams(0.7f, 0.9f, 40, 33, null, List.of("\n"), true);
    private static final KvHandle HANDLE = new KvHandle("prefill-a", 1_700_000_000_123L, -2L, new int[] {7, 3, 0}, 40, SPEC);

    @Test
    void shouldCarryEveryFieldOfAPrefillRequestWithTheSeedAndWithoutStopStrings() {
        PrefillRequest request = new PrefillRequest("r1#4", new int[] {1, 511, 0}, SAMPLING, -8L, "tenant-a");
        PrefillRequest back = PrefillMessages.fromProto(PrefillMessages.toProto(request), MODEL);
        assertThat(back.requestId()).isEqualTo("r1#4");
        assertThat(back.promptTokenIds()).containsExactly(1, 511, 0);
        assertThat(back.seed()).isEqualTo(-8L);
        assertThat(back.cacheSalt()).isEqualTo("tenant-a");
        assertThat(back.sampling()).isEqualTo(new SamplingParams(0.7f, 0.9f, 40, 33, -8L, List.of(), true));
    }

    @Test
    void shouldReadAnEmptyCacheSaltAsNoneAndSendNoneAsEmpty() {
        PrefillRequest request = new PrefillRequest("r", new int[] {1}, SamplingParams.greedy(1), 0L);
        assertThat(PrefillMessages.toProto(request).getCacheSalt()).isEmpty();
        assertThat(PrefillMessages.fromProto(PrefillMessages.toProto(request), MODEL).cacheSalt()).isNull();
    }

    @Test
    void shouldCarryAPrefillResultWithItsHandleTimingsAndKvAddress() {
        PrefillResult result = new PrefillResult("r1#4", 42, HANDLE, 1_500L, 2_000_000L);
        PrefillResponse m = PrefillMessages.toProto(result, "10.0.0.7:7100");
        assertThat(m.getKvHandle().getKvAddress()).isEqualTo("10.0.0.7:7100");
        assertThat(m.getTimings().getQueueNs()).isEqualTo(1_500L);
        PrefillResult back = PrefillMessages.fromProto(m);
        assertThat(back.requestId()).isEqualTo("r1#4");
        assertThat(back.firstToken()).isEqualTo(42);
        assertThat(back.queueNanos()).isEqualTo(1_500L);
        assertThat(back.computeNanos()).isEqualTo(2_000_000L);
        assertHandle(back.kvHandle());
    }

    @Test
    void shouldCarryEveryFieldOfADecodeRequest() {
        int[] prompt = new int[40];
        for (int i = 0; i < prompt.length; i++) {
            prompt[i] = i * 11;
        }
        DecodeRequest request = new DecodeRequest("r1#4", prompt, 42, HANDLE, SAMPLING, Long.MIN_VALUE);
        io.tandem.proto.v1.DecodeRequest m = DecodeMessages.toProto(request, "[::1]:7100");
        assertThat(m.getKvHandle().getKvAddress()).isEqualTo("[::1]:7100");
        DecodeRequest back = DecodeMessages.fromProto(m, MODEL);
        assertThat(back.requestId()).isEqualTo("r1#4");
        assertThat(back.promptTokenIds()).containsExactly(prompt);
        assertThat(back.firstToken()).isEqualTo(42);
        assertThat(back.seed()).isEqualTo(Long.MIN_VALUE);
        assertThat(back.sampling().maxTokens()).isEqualTo(33);
        assertHandle(back.kvHandle());
    }

    /** Summaries of the handle's three blocks over random f16 keys. */
    private static PageSummaries summaries() {
        try (KvCacheStorage storage = new KvCacheStorage(SPEC, 8)) {
            Random rnd = new Random(1);
            for (int layer = 0; layer < SPEC.numLayers(); layer++) {
                for (long at = 0; at < storage.layer(layer).byteSize(); at += 2) {
                    storage.layer(layer).set(ValueLayout.JAVA_SHORT_UNALIGNED, at, Float.floatToFloat16((float) rnd.nextGaussian()));
                }
            }
            return PageSummaries.compute(storage, HANDLE.blockIds(), HANDLE.numTokens());
        }
    }

    @Test
    void shouldCarryPageSummariesByteForByteInPrefillResultsDecodeRequestsAndDecodeInputs() {
        PageSummaries summaries = summaries();
        KvHandle handle = HANDLE.withPageSummaries(summaries);

        PrefillResult result = PrefillMessages.fromProto(PrefillMessages.toProto(new PrefillResult("r", 42, handle, 1, 2), "h:1"));
        assertHandle(result.kvHandle());
        assertThat(result.kvHandle().pageSummaries().toByteArray()).isEqualTo(summaries.toByteArray());
        assertThat(result.kvHandle().pageSummaries().max(4, 2, 3, 7)).isEqualTo(summaries.max(4, 2, 3, 7));

        io.tandem.proto.v1.DecodeRequest m = DecodeMessages.toProto(new DecodeRequest("r", new int[40], 5, handle, SAMPLING, 1L), "");
        assertThat(m.getKvHandle().getPageSummaries().getData().size())
                .isEqualTo(5 * 3 * 4 * 2 * 8 * 2).isEqualTo(summaries.byteSize());
        assertThat(DecodeMessages.fromProto(m, MODEL).kvHandle().pageSummaries().toByteArray()).isEqualTo(summaries.toByteArray());

        // the early-handle path: summaries on their own, read against the request's handle
        KvPageSummaries alone = KvHandleMessages.toProto(summaries);
        assertThat(KvHandleMessages.fromProto(alone, HANDLE, "page_summaries").toByteArray()).isEqualTo(summaries.toByteArray());
    }

    @Test
    void shouldSendAHandleWithoutSummariesWithoutTheField() {
        var m = KvHandleMessages.toProto(HANDLE, "");
        assertThat(m.hasPageSummaries()).isFalse();
        assertThat(KvHandleMessages.fromProto(m).pageSummaries()).isNull();
    }

    @Test
    void shouldNameThePageSummariesWhoseLengthDoesNotFitTheHandle() {
        var valid = DecodeMessages.toProto(new DecodeRequest("r", new int[40], 5, HANDLE.withPageSummaries(summaries()),
                SAMPLING, 1L), "");
        var handle = valid.getKvHandle();
        assertInvalid(() -> DecodeMessages.fromProto(valid.toBuilder().setKvHandle(handle.toBuilder().setPageSummaries(
                KvPageSummaries.newBuilder().setData(ByteString.copyFrom(new byte[10])))).build(), MODEL),
                "kv_handle.page_summaries");
        // one more block in the handle: the summaries cover three
        assertInvalid(() -> DecodeMessages.fromProto(valid.toBuilder().setKvHandle(handle.toBuilder()
                .addBlockIds(9).setNumTokens(56)).build(), MODEL), "kv_handle.page_summaries");
    }

    private static void assertHandle(KvHandle h) {
        assertThat(h.workerId()).isEqualTo("prefill-a");
        assertThat(h.epoch()).isEqualTo(1_700_000_000_123L);
        assertThat(h.leaseId()).isEqualTo(-2L);
        assertThat(h.blockIds()).containsExactly(7, 3, 0);
        assertThat(h.numTokens()).isEqualTo(40);
        assertThat(h.spec()).isEqualTo(SPEC);
    }

    @Test
    void shouldNameTheFieldOfAnUnservablePrefillRequest() {
        var valid = PrefillMessages.toProto(new PrefillRequest("r", new int[] {1, 2}, SamplingParams.greedy(4), 0L));
        assertInvalid(() -> PrefillMessages.fromProto(valid.toBuilder().setRequestId("").build(), MODEL), "request_id");
        assertInvalid(() -> PrefillMessages.fromProto(valid.toBuilder().clearPromptTokenIds().build(), MODEL), "prompt_token_ids");
        assertInvalid(() -> PrefillMessages.fromProto(valid.toBuilder().setPromptTokenIds(1, 512).build(), MODEL),
                "prompt_token_ids[1]");
        assertInvalid(() -> PrefillMessages.fromProto(valid.toBuilder().setPromptTokenIds(0, -1).build(), MODEL),
                "prompt_token_ids[0]");
        var tooLong = valid.toBuilder();
        for (int i = 0; i < MODEL.contextLength(); i++) {
            tooLong.addPromptTokenIds(1);
        }
        assertInvalid(() -> PrefillMessages.fromProto(tooLong.build(), MODEL), "prompt_token_ids");
        assertInvalid(() -> PrefillMessages.fromProto(valid.toBuilder().clearSampling().build(), MODEL), "top_p");
        assertInvalid(() -> PrefillMessages.fromProto(valid.toBuilder()
                .setSampling(valid.getSampling().toBuilder().setMaxTokens(0)).build(), MODEL), "max_tokens");
    }

    @Test
    void shouldNameTheFieldOfAnUnservableDecodeRequest() {
        var valid = DecodeMessages.toProto(new DecodeRequest("r", new int[40], 5, HANDLE, SAMPLING, 1L), "");
        assertInvalid(() -> DecodeMessages.fromProto(valid.toBuilder().setFirstToken(512).build(), MODEL), "first_token");
        assertInvalid(() -> DecodeMessages.fromProto(valid.toBuilder().clearKvHandle().build(), MODEL), "kv_handle");
        assertInvalid(() -> DecodeMessages.fromProto(valid.toBuilder().addPromptTokenIds(1).build(), MODEL),
                "kv_handle.num_tokens");
        var handle = valid.getKvHandle();
        assertInvalid(() -> DecodeMessages.fromProto(valid.toBuilder().setKvHandle(handle.toBuilder().setWorkerId("")).build(),
                MODEL), "kv_handle.worker_id");
        assertInvalid(() -> DecodeMessages.fromProto(valid.toBuilder().setKvHandle(handle.toBuilder().addBlockIds(9)).build(),
                MODEL), "kv_handle.block_ids");
        assertInvalid(() -> DecodeMessages.fromProto(valid.toBuilder().setKvHandle(handle.toBuilder().setBlockIds(0, -3)).build(),
                MODEL), "kv_handle.block_ids");
        assertInvalid(() -> DecodeMessages.fromProto(valid.toBuilder().setKvHandle(handle.toBuilder()
                .setSpec(handle.getSpec().toBuilder().setBlockSize(12))).build(), MODEL), "kv_handle.spec");
        assertInvalid(() -> DecodeMessages.fromProto(valid.toBuilder().setKvHandle(handle.toBuilder()
                .setSpec(handle.getSpec().toBuilder().setDtypeValue(0))).build(), MODEL), "kv_handle.spec.dtype");
        assertInvalid(() -> DecodeMessages.fromProto(valid.toBuilder().setKvHandle(handle.toBuilder()
                .setSpec(handle.getSpec().toBuilder().setDtypeValue(99))).build(), MODEL), "kv_handle.spec.dtype");
    }

    private static void assertInvalid(Runnable call, String field) {
        assertThatThrownBy(call::run).isInstanceOfSatisfying(InvalidArgumentException.class, e -> {
            assertThat(e.param()).isEqualTo(field);
            assertThat(WorkerStatuses.toStatus(e).getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
            assertThat(WorkerStatuses.toStatus(e).getDescription()).contains(field);
        });
    }

    @Test
    void shouldReportAnEnginesStatsAsALoadReport() {
        EngineStats stats = new EngineStats(2, 3, 4, 90, 100, 7, 5, 1, 1234);
        LoadReport report = LoadReports.toProto("prefill-a", 99L, WorkerRole.WORKER_ROLE_PREFILL, stats);
        assertThat(report.getWorkerId()).isEqualTo("prefill-a");
        assertThat(report.getEpoch()).isEqualTo(99L);
        assertThat(report.getRole()).isEqualTo(WorkerRole.WORKER_ROLE_PREFILL);
        assertThat(report.getNumRunning()).isEqualTo(2);
        assertThat(report.getNumWaiting()).isEqualTo(3);
        assertThat(report.getNumExported()).isEqualTo(4);
        assertThat(report.getNumFreeBlocks()).isEqualTo(90);
        assertThat(report.getNumTotalBlocks()).isEqualTo(100);
        assertThat(report.getQueuedPrefillTokens()).isEqualTo(1234);
        assertThat(report.getCachedBlockHashesCount()).isZero();
    }

    @Test
    void shouldCarryCachedBlockHashesAndTheirBlockSizeThroughALoadReport() {
        CachedBlockHashes cached = new CachedBlockHashes(16, new long[] {-7L, 42L, Long.MAX_VALUE});
        EngineStats stats = new EngineStats(0, 0, 0, 90, 100, 0, 0, 0, 0, cached);
        LoadReport report = LoadReports.toProto("prefill-a", 99L, WorkerRole.WORKER_ROLE_PREFILL, stats);
        assertThat(report.getBlockSize()).isEqualTo(16);
        assertThat(report.getCachedBlockHashesList()).containsExactly(-7L, 42L, Long.MAX_VALUE);
        CachedBlockHashes back = LoadReports.cachedBlockHashes(report);
        assertThat(back).isEqualTo(cached);
        assertThat(back.contains(42L)).isTrue();
        assertThat(back.contains(43L)).isFalse();
    }

    @Test
    void shouldMapEngineErrorsToStatuses() {
        assertThat(WorkerStatuses.toStatus(new CancellationException("gone")).getCode()).isEqualTo(Status.Code.CANCELLED);
        assertThat(WorkerStatuses.toStatus(new IllegalArgumentException("too long")).getCode())
                .isEqualTo(Status.Code.INVALID_ARGUMENT);
        Status internal = WorkerStatuses.toStatus(new IllegalStateException("KV hand-off failed"));
        assertThat(internal.getCode()).isEqualTo(Status.Code.INTERNAL);
        assertThat(internal.getDescription()).contains("KV hand-off failed");
    }

    @Test
    void shouldParseAndPrintHostPorts() {
        assertThat(HostPort.parse("10.0.0.7:7100")).isEqualTo(new HostPort("10.0.0.7", 7100));
        assertThat(HostPort.parse("[::1]:7100")).isEqualTo(new HostPort("::1", 7100));
        assertThat(new HostPort("::1", 7100)).hasToString("[::1]:7100");
        assertThat(HostPort.parseList("a:1, b:2")).containsExactly(new HostPort("a", 1), new HostPort("b", 2));
        for (String bad : List.of("host", "host:", ":80", "host:x", "::1:80", "host:70000")) {
            assertThatThrownBy(() -> HostPort.parse(bad)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining(bad);
        }
    }
}
