package io.tandem.router.worker;

import static io.tandem.router.worker.LoadedWorkers.decodeLoad;
import static io.tandem.router.worker.LoadedWorkers.prefillLoad;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tandem.kvcache.BlockHasher;
import io.tandem.kvcache.CachedBlockHashes;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@code kv_aware} against loads as workers report them, with prompts hashed by the workers' own {@link BlockHasher}. */
class KvAwarePolicyTest {
    private static final String MODEL = "stories260K";
    private static final int BLOCK = 16;

    private final KvAwarePolicy policy = new KvAwarePolicy(MODEL, 1.0);
    private final LoadedWorkers.Prefill a = new LoadedWorkers.Prefill("a", prefillLoad(0, none()));
    private final LoadedWorkers.Prefill b = new LoadedWorkers.Prefill("b", prefillLoad(0, none()));
    private final List<PrefillWorkerClient> pool = List.of(a, b);

    @Test
    void shouldSendAPromptToTheWorkerHoldingItsPrefixAndChargeOnlyTheUncachedTokens() {
        int[] prompt = prompt(130, 1); // 8 full blocks + 2 tokens
        b.load = prefillLoad(0, cached(prompt, 6, null));
        PrefillRoute route = policy.choosePrefill(pool, prompt, null);
        assertThat(route.worker()).isSameAs(b);
        assertThat(route.numPrefillTokens()).isEqualTo(130 - 6 * BLOCK);
        policy.prefillEnded(route);
        // from now on the router also remembers the 8 blocks it just sent to b
        for (int i = 0; i < 3; i++) {
            PrefillRoute again = policy.choosePrefill(pool, prompt, null);
            assertThat(again.worker()).isSameAs(b);
            assertThat(again.numPrefillTokens()).isEqualTo(130 - 8 * BLOCK);
            policy.prefillEnded(again);
        }
    }

    @Test
    void shouldForgetAWorkerThatLeftThePoolAndIgnoreTheEndsOfItsLastRequests() {
        int[] prompt = prompt(130, 1);
        PrefillRoute route = policy.choosePrefill(List.of(b), prompt, null);
        DecodeWorkerClient decode = new LoadedWorkers.Decode("d", decodeLoad(0, 100));
        assertThat(policy.chooseDecode(List.of(decode))).isSameAs(decode);
        assertThat(policy.queuedPrefillTokens(b)).isEqualTo(130);

        policy.workerRemoved(b);
        policy.workerRemoved(decode);
        policy.prefillEnded(route); // a request that ran on it ends after it left
        policy.decodeEnded(decode);

        assertThat(policy.queuedPrefillTokens(b)).isZero();
        // nor is the prefix it was sent remembered for it any more
        assertThat(policy.choosePrefill(List.of(b), prompt, null).numPrefillTokens()).isEqualTo(130);
    }

    @Test
    void shouldMatchOnlyBlocksHashedUnderTheSameCacheSalt() {
        int[] prompt = prompt(130, 1);
        b.load = prefillLoad(0, cached(prompt, 8, "tenant-a"));
        assertThat(policy.choosePrefill(pool, prompt, "tenant-a").numPrefillTokens()).isEqualTo(130 - 8 * BLOCK);
        KvAwarePolicy fresh = new KvAwarePolicy(MODEL, 1.0);
        assertThat(fresh.choosePrefill(pool, prompt, null).numPrefillTokens()).isEqualTo(130);
        assertThat(new KvAwarePolicy("another-model", 1.0).choosePrefill(pool, prompt, "tenant-a").numPrefillTokens())
                .isEqualTo(130);
    }

    @Test
    void shouldCountOnlyTheLeadingRunOfCachedBlocks() {
        int[] prompt = prompt(130, 1);
        long[] all = hashes(prompt, null);
        b.load = prefillLoad(0, new CachedBlockHashes(BLOCK, Arrays.copyOfRange(all, 1, all.length)));
        assertThat(policy.choosePrefill(List.of(b), prompt, null).numPrefillTokens()).isEqualTo(130);
    }

    @Test
    void shouldLeaveTheLastBlockToComputeWhenTheWholePromptIsCached() {
        int[] prompt = prompt(128, 1); // exactly 8 blocks: the worker hits at most 7
        b.load = prefillLoad(0, cached(prompt, 8, null));
        assertThat(policy.choosePrefill(List.of(b), prompt, null).numPrefillTokens()).isEqualTo(BLOCK);
    }

    @Test
    void shouldSpreadToTheOtherWorkerOnceTheHoldersQueueOutweighsTheSavedPrefill() {
        int[] prompt = prompt(130, 1);
        // holder: 2 uncached + queued; other: 130 uncached + 0
        b.load = prefillLoad(127, cached(prompt, 8, null));
        assertThat(policy.choosePrefill(pool, prompt, null).worker()).isSameAs(b);
        b.load = prefillLoad(129, cached(prompt, 8, null));
        PrefillRoute route = policy.choosePrefill(pool, prompt, null);
        assertThat(route.worker()).isSameAs(a);
        assertThat(route.numPrefillTokens()).isEqualTo(130);
    }

    @Test
    void shouldWeighCacheHitsByTheOverlapWeight() {
        int[] prompt = prompt(130, 1);
        b.load = prefillLoad(300, cached(prompt, 8, null));
        // weight 1: 2 + 300 > 130; weight 3: 6 + 300 < 390
        assertThat(policy.choosePrefill(pool, prompt, null).worker()).isSameAs(a);
        assertThat(new KvAwarePolicy(MODEL, 3.0).choosePrefill(pool, prompt, null).worker()).isSameAs(b);
    }

    @Test
    void shouldKeepABurstWithOnePrefixOnTheWorkerItWasJustSentToBeforeAnyReportListsIt() {
        int[] prompt = prompt(130, 1);
        PrefillRoute first = policy.choosePrefill(pool, prompt, null);
        policy.prefillEnded(first);
        for (int i = 0; i < 3; i++) {
            int[] sameStart = Arrays.copyOf(prompt, 140);
            sameStart[139] = 400 + i;
            PrefillRoute next = policy.choosePrefill(pool, sameStart, null);
            assertThat(next.worker()).isSameAs(first.worker());
            assertThat(next.numPrefillTokens()).isEqualTo(140 - 8 * BLOCK);
            policy.prefillEnded(next);
        }
    }

    @Test
    void shouldCountPrefillTokensItSentUntilThePrefillEnds() {
        PrefillRoute first = policy.choosePrefill(pool, prompt(130, 1), null);
        PrefillRoute second = policy.choosePrefill(pool, prompt(130, 2), null);
        assertThat(second.worker()).as("the first worker has 130 tokens in flight").isNotSameAs(first.worker());
        policy.prefillEnded(first);
        PrefillRoute third = policy.choosePrefill(pool, prompt(130, 3), null);
        assertThat(third.worker()).isSameAs(first.worker());
    }

    @Test
    void shouldNotCountAPrefillThatEndedAfterTheReportThatStillShowsItQueued() {
        int[] prompt = prompt(130, 1);
        PrefillRoute first = policy.choosePrefill(pool, prompt, null);
        LoadedWorkers.Prefill holder = (LoadedWorkers.Prefill) first.worker();
        LoadedWorkers.Prefill other = holder == a ? b : a;
        holder.load = prefillLoad(130, none()); // a poll caught the prompt queued
        policy.prefillEnded(first);            // then it ended
        PrefillRoute second = policy.choosePrefill(pool, prompt, null);
        assertThat(second.worker()).as("2 uncached + 0 queued beats 130 + 0").isSameAs(holder);
        policy.prefillEnded(second);

        holder.load = prefillLoad(130, none()); // a report taken after both ended: real queued work
        assertThat(policy.choosePrefill(pool, prompt, null).worker()).as("2 + 130 loses to 130 + 0").isSameAs(other);
    }

    @Test
    void shouldSkipUnhealthyWorkersAndAnswerNullWhenNoneIsHealthy() {
        int[] prompt = prompt(130, 1);
        b.load = WorkerLoad.UNREACHABLE;
        for (int i = 0; i < 3; i++) {
            assertThat(policy.choosePrefill(pool, prompt(40, i), null).worker()).isSameAs(a);
        }
        a.load = WorkerLoad.UNREACHABLE;
        assertThat(policy.choosePrefill(pool, prompt, null)).isNull();
    }

    @Test
    void shouldChooseTheDecodeWorkerWithFewestSequencesThenMostFreeBlocks() {
        LoadedWorkers.Decode d0 = new LoadedWorkers.Decode("d0", decodeLoad(3, 90));
        LoadedWorkers.Decode d1 = new LoadedWorkers.Decode("d1", decodeLoad(0, 10));
        List<DecodeWorkerClient> decodes = List.of(d0, d1);
        // d1 reports none: it gets sequences until it has 3 by our count, then the tie goes to d0's free blocks
        List<DecodeWorkerClient> chosen = List.of(policy.chooseDecode(decodes), policy.chooseDecode(decodes),
                policy.chooseDecode(decodes), policy.chooseDecode(decodes));
        assertThat(chosen).containsExactly(d1, d1, d1, d0);
        chosen.forEach(policy::decodeEnded);
        d1.load = decodeLoad(0, 0);
        assertThat(policy.chooseDecode(decodes)).as("a worker without a free block comes last").isSameAs(d0);
        d0.load = WorkerLoad.UNREACHABLE;
        assertThat(policy.chooseDecode(decodes)).isSameAs(d1);
    }

    @Test
    void shouldRejectANegativeOverlapWeight() {
        assertThatThrownBy(() -> new KvAwarePolicy(MODEL, -1)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("-1.0");
        assertThatThrownBy(() -> RoutingPolicy.named("sticky", MODEL, 1)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("'sticky'").hasMessageContaining("kv_aware");
    }

    private static CachedBlockHashes none() {
        return new CachedBlockHashes(BLOCK, new long[0]);
    }

    private static CachedBlockHashes cached(int[] prompt, int numBlocks, String salt) {
        return new CachedBlockHashes(BLOCK, Arrays.copyOf(hashes(prompt, salt), numBlocks));
    }

    private static long[] hashes(int[] prompt, String salt) {
        BlockHasher hasher = new BlockHasher(BLOCK, MODEL);
        long[] out = new long[prompt.length / BLOCK];
        hasher.hashFullBlocks(prompt, prompt.length, hasher.extraHash(salt), out);
        return out;
    }

    static int[] prompt(int n, int seed) {
        int[] t = new int[n];
        for (int i = 0; i < n; i++) {
            t[i] = 1 + (i * 31 + seed * 17) % 500;
        }
        return t;
    }
}
