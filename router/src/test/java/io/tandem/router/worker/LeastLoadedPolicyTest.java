package io.tandem.router.worker;

import static io.tandem.router.worker.LoadedWorkers.decodeLoad;
import static io.tandem.router.worker.LoadedWorkers.prefillLoad;
import static org.assertj.core.api.Assertions.assertThat;

import io.tandem.kvcache.BlockHasher;
import io.tandem.kvcache.CachedBlockHashes;
import java.util.List;
import org.junit.jupiter.api.Test;

class LeastLoadedPolicyTest {
    private final LeastLoadedPolicy policy = new LeastLoadedPolicy();

    @Test
    void shouldSendPrefillsToTheShortestQueueIgnoringCachedPrefixes() {
        int[] prompt = KvAwarePolicyTest.prompt(130, 1);
        BlockHasher hasher = new BlockHasher(16, "stories260K");
        long[] hashes = new long[8];
        hasher.hashFullBlocks(prompt, prompt.length, hasher.extraHash(null), hashes);
        LoadedWorkers.Prefill holder = new LoadedWorkers.Prefill("holder", prefillLoad(50, new CachedBlockHashes(16, hashes)));
        LoadedWorkers.Prefill idle = new LoadedWorkers.Prefill("idle", prefillLoad(10, CachedBlockHashes.NONE));
        PrefillRoute route = policy.choosePrefill(List.of(holder, idle), prompt, null);
        assertThat(route.worker()).isSameAs(idle);
        assertThat(route.numPrefillTokens()).isEqualTo(130);
        // 10 reported, 130 sent by us and not yet prefilled: the holder's 50 is now shorter
        assertThat(policy.choosePrefill(List.of(holder, idle), prompt, null).worker()).isSameAs(holder);
        policy.prefillEnded(route);
        assertThat(policy.choosePrefill(List.of(holder, idle), prompt, null).worker()).isSameAs(idle);
    }

    @Test
    void shouldTakeTurnsBetweenEquallyLoadedWorkersAndSkipUnhealthyOnes() {
        LoadedWorkers.Decode d0 = new LoadedWorkers.Decode("d0", decodeLoad(1, 50));
        LoadedWorkers.Decode d1 = new LoadedWorkers.Decode("d1", decodeLoad(1, 50));
        DecodeWorkerClient first = policy.chooseDecode(List.of(d0, d1));
        policy.decodeEnded(first);
        DecodeWorkerClient second = policy.chooseDecode(List.of(d0, d1));
        policy.decodeEnded(second);
        assertThat(List.of(first, second)).containsExactlyInAnyOrder(d0, d1);
        d0.load = WorkerLoad.UNREACHABLE;
        assertThat(policy.chooseDecode(List.of(d0, d1))).isSameAs(d1);
        d1.load = WorkerLoad.UNREACHABLE;
        assertThat(policy.chooseDecode(List.of(d0, d1))).isNull();
    }

    @Test
    void shouldGoRoundRobinWithRoundRobinPolicy() {
        RoutingPolicy rr = RoutingPolicy.named("round_robin", "stories260K", 1);
        LoadedWorkers.Prefill p0 = new LoadedWorkers.Prefill("p0", prefillLoad(1000, CachedBlockHashes.NONE));
        LoadedWorkers.Prefill p1 = new LoadedWorkers.Prefill("p1", prefillLoad(0, CachedBlockHashes.NONE));
        List<PrefillWorkerClient> pool = List.of(p0, p1);
        int[] prompt = {1, 2, 3};
        assertThat(List.of(rr.choosePrefill(pool, prompt, null).worker(), rr.choosePrefill(pool, prompt, null).worker(),
                rr.choosePrefill(pool, prompt, null).worker())).containsExactly(p0, p1, p0);
    }
}
