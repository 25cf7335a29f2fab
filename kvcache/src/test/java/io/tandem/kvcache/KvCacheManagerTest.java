package io.tandem.kvcache;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.RepetitionInfo;
import org.junit.jupiter.api.Test;

class KvCacheManagerTest {
    private static final int BLOCK = 4;

    @Test
    void shouldHitTheCachedPrefixAndComputeOnlyTheSuffix() {
        BlockPool pool = new BlockPool(8, true);
        KvCacheManager kv = new KvCacheManager(pool, BLOCK);
        BlockHasher hasher = new BlockHasher(BLOCK, "m");
        long extra = hasher.extraHash(null);
        int[] first = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
        long[] h1 = new long[4];
        int full1 = hasher.hashFullBlocks(first, first.length, extra, h1);
        BlockTable t1 = new BlockTable(4);
        assertThat(kv.allocateComputedBlocks(h1, full1, first.length, t1)).isZero();
        kv.recordPrefixCacheQuery(first.length, 0);
        assertThat(kv.allocateSlots(t1, first.length)).isTrue();
        assertThat(t1.toArray()).containsExactly(0, 1, 2);
        kv.cacheFullBlocks(t1, h1, 0, full1);
        kv.free(t1);
        // same first 8 tokens, different tail
        int[] second = {1, 2, 3, 4, 5, 6, 7, 8, 42, 43, 44};
        long[] h2 = new long[4];
        int full2 = hasher.hashFullBlocks(second, second.length, extra, h2);
        BlockTable t2 = new BlockTable(4);
        assertThat(kv.allocateComputedBlocks(h2, full2, second.length, t2)).isEqualTo(8);
        kv.recordPrefixCacheQuery(second.length, 8);
        assertThat(t2.toArray()).containsExactly(0, 1);
        assertThat(kv.allocateSlots(t2, second.length)).isTrue();
        // block 2 was freed first (tail first) so it is the next evicted, after the never-used ones
        assertThat(t2.toArray()).containsExactly(0, 1, 3);
        assertThat(kv.prefixCacheQueries()).isEqualTo(21);
        assertThat(kv.prefixCacheHits()).isEqualTo(8);
    }

    @Test
    void shouldLeaveAtLeastOneTokenToComputeWhenTheWholePromptIsCached() {
        BlockPool pool = new BlockPool(4, true);
        KvCacheManager kv = new KvCacheManager(pool, BLOCK);
        BlockHasher hasher = new BlockHasher(BLOCK, "m");
        int[] prompt = {1, 2, 3, 4, 5, 6, 7, 8};
        long[] h = new long[2];
        int full = hasher.hashFullBlocks(prompt, 8, hasher.extraHash(null), h);
        BlockTable t = new BlockTable(2);
        kv.allocateSlots(t, 8);
        kv.cacheFullBlocks(t, h, 0, full);
        kv.free(t);
        assertThat(kv.allocateComputedBlocks(h, full, 8, t)).isEqualTo(4);
    }

    @Test
    void shouldNotShareBlocksAcrossModelsOrCacheSalts() {
        BlockHasher a = new BlockHasher(BLOCK, "model-a");
        BlockHasher b = new BlockHasher(BLOCK, "model-b");
        int[] tokens = {1, 2, 3, 4};
        assertThat(a.hashBlock(BlockHasher.ROOT, tokens, 0, a.extraHash(null)))
                .isNotEqualTo(b.hashBlock(BlockHasher.ROOT, tokens, 0, b.extraHash(null)))
                .isNotEqualTo(a.hashBlock(BlockHasher.ROOT, tokens, 0, a.extraHash("tenant-1")))
                .isEqualTo(a.hashBlock(BlockHasher.ROOT, tokens, 0, a.extraHash(null)));
    }

    @Test
    void shouldChainHashesSoEqualBlocksAfterDifferentPrefixesDiffer() {
        BlockHasher h = new BlockHasher(BLOCK, "m");
        long extra = h.extraHash(null);
        long[] x = new long[2];
        long[] y = new long[2];
        h.hashFullBlocks(new int[] {1, 1, 1, 1, 9, 9, 9, 9}, 8, extra, x);
        h.hashFullBlocks(new int[] {2, 2, 2, 2, 9, 9, 9, 9}, 8, extra, y);
        assertThat(x[1]).isNotEqualTo(y[1]);
    }

    /** A sequence in the randomized test: its tokens and its block table. */
    private static final class Seq {
        int[] tokens;
        int numTokens;
        final BlockTable table = new BlockTable(4);
        long[] hashes = new long[64];
        int cachedBlocks;
    }

    @RepeatedTest(20)
    void shouldNeverLeakDoubleFreeOrServeWrongContentUnderRandomOperations(RepetitionInfo info) {
        SplittableRandom rnd = new SplittableRandom(info.getCurrentRepetition());
        int numBlocks = 24;
        BlockPool pool = new BlockPool(numBlocks, true);
        KvCacheManager kv = new KvCacheManager(pool, BLOCK);
        BlockHasher hasher = new BlockHasher(BLOCK, "m");
        long extra = hasher.extraHash(null);
        int[][] content = new int[numBlocks][]; // what each block's KV "holds", written when computed
        int[][] bases = new int[3][];
        for (int i = 0; i < bases.length; i++) {
            bases[i] = rnd.ints(24, 0, 5).toArray();
        }
        List<Seq> live = new ArrayList<>();
        for (int op = 0; op < 2000; op++) {
            int kind = rnd.nextInt(10);
            if (kind < 3 || live.isEmpty()) {
                admit(rnd, kv, hasher, extra, bases, content, live);
            } else if (kind < 8) {
                grow(rnd, kv, hasher, extra, content, live);
            } else {
                kv.free(live.remove(rnd.nextInt(live.size())).table); // finish, cancel or preempt
            }
            checkInvariants(pool, live);
        }
        for (Seq s : live) {
            kv.free(s.table);
        }
        assertThat(pool.numFreeBlocks()).isEqualTo(numBlocks);
        assertThat(kv.prefixCacheHits()).isPositive();
    }

    private static void admit(SplittableRandom rnd, KvCacheManager kv, BlockHasher hasher, long extra, int[][] bases,
                              int[][] content, List<Seq> live) {
        Seq s = new Seq();
        int[] base = bases[rnd.nextInt(bases.length)];
        int shared = rnd.nextInt(base.length + 1);
        s.numTokens = shared + 1 + rnd.nextInt(8);
        s.tokens = new int[128];
        System.arraycopy(base, 0, s.tokens, 0, shared);
        for (int i = shared; i < s.numTokens; i++) {
            s.tokens[i] = rnd.nextInt(5);
        }
        int full = hasher.hashFullBlocks(s.tokens, s.numTokens, extra, s.hashes);
        int computed = kv.allocateComputedBlocks(s.hashes, full, s.numTokens, s.table);
        kv.recordPrefixCacheQuery(s.numTokens, computed);
        for (int b = 0; b < computed / BLOCK; b++) {
            int[] want = Arrays.copyOfRange(s.tokens, b * BLOCK, (b + 1) * BLOCK);
            assertThat(content[s.table.blockId(b)]).as("prefix hit content").containsExactly(want);
        }
        if (!kv.allocateSlots(s.table, s.numTokens)) {
            kv.free(s.table);
            return;
        }
        writeAndCache(kv, s, content, computed / BLOCK);
        live.add(s);
    }

    private static void grow(SplittableRandom rnd, KvCacheManager kv, BlockHasher hasher, long extra, int[][] content,
                             List<Seq> live) {
        Seq s = live.get(rnd.nextInt(live.size()));
        if (s.numTokens == s.tokens.length) {
            return;
        }
        s.tokens[s.numTokens] = rnd.nextInt(5);
        if (!kv.allocateSlots(s.table, s.numTokens + 1)) {
            return; // the engine would preempt someone; the kind >= 8 branch covers freeing
        }
        s.numTokens++;
        hasher.hashFullBlocks(s.tokens, s.numTokens, extra, s.hashes);
        writeAndCache(kv, s, content, s.cachedBlocks);
    }

    /** "Computes" the KV of blocks from {@code fromBlock} on, then caches the full ones. */
    private static void writeAndCache(KvCacheManager kv, Seq s, int[][] content, int fromBlock) {
        for (int b = fromBlock; b < s.table.numBlocks(); b++) {
            int end = Math.min((b + 1) * BLOCK, s.numTokens);
            content[s.table.blockId(b)] = Arrays.copyOfRange(s.tokens, b * BLOCK, end);
        }
        int full = s.numTokens / BLOCK;
        kv.cacheFullBlocks(s.table, s.hashes, Math.min(fromBlock, full), full);
        s.cachedBlocks = full;
    }

    private static void checkInvariants(BlockPool pool, List<Seq> live) {
        int[] refs = new int[pool.numBlocks()];
        for (Seq s : live) {
            for (int i = 0; i < s.table.numBlocks(); i++) {
                refs[s.table.blockId(i)]++;
            }
        }
        int free = 0;
        for (int id = 0; id < refs.length; id++) {
            assertThat(pool.block(id).refCount()).as("refCount of block %d", id).isEqualTo(refs[id]);
            if (refs[id] == 0) {
                free++;
            }
        }
        assertThat(pool.numFreeBlocks()).isEqualTo(free);
    }
}
