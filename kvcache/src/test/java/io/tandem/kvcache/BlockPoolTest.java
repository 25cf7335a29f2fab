package io.tandem.kvcache;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class BlockPoolTest {

    @Test
    void shouldHandOutBlocksInIdOrderFromAFreshPool() {
        BlockPool pool = new BlockPool(4, true);
        int[] ids = new int[3];
        assertThat(pool.allocate(3, ids, 0)).isTrue();
        assertThat(ids).containsExactly(0, 1, 2);
        assertThat(pool.numFreeBlocks()).isEqualTo(1);
        assertThat(pool.block(1).refCount()).isEqualTo(1);
    }

    @Test
    void shouldRefuseWithoutTakingAnythingWhenTooFewBlocksAreFree() {
        BlockPool pool = new BlockPool(2, false);
        int[] ids = new int[3];
        assertThat(pool.allocate(3, ids, 0)).isFalse();
        assertThat(pool.numFreeBlocks()).isEqualTo(2);
    }

    @Test
    void shouldEvictLeastRecentlyFreedBlockFirst() {
        BlockPool pool = new BlockPool(4, true);
        int[] ids = new int[4];
        pool.allocate(4, ids, 0);
        // free tail-first as a sequence does: 3, 2, then 0, 1 from another order
        pool.free(new int[] {3, 2}, 0, 2);
        pool.free(new int[] {0, 1}, 0, 2);
        assertThat(pool.freeBlockIdsInEvictionOrder()).containsExactly(3, 2, 0, 1);
        int[] got = new int[2];
        pool.allocate(2, got, 0);
        assertThat(got).containsExactly(3, 2);
    }

    @Test
    void shouldReuseCachedFullBlockAndTakeItOutOfTheMiddleOfTheFreeQueue() {
        BlockPool pool = new BlockPool(4, true);
        int[] ids = new int[3];
        pool.allocate(3, ids, 0);
        pool.cacheFullBlock(1, 42L);
        pool.free(ids, 0, 3);
        assertThat(pool.freeBlockIdsInEvictionOrder()).containsExactly(3, 0, 1, 2);
        KvBlock hit = pool.cachedBlock(42L);
        assertThat(hit.blockId()).isEqualTo(1);
        pool.touch(1);
        assertThat(pool.freeBlockIdsInEvictionOrder()).containsExactly(3, 0, 2);
        assertThat(pool.block(1).refCount()).isEqualTo(1);
    }

    @Test
    void shouldDropCachedHashWhenItsBlockIsEvicted() {
        BlockPool pool = new BlockPool(1, true);
        int[] ids = new int[1];
        pool.allocate(1, ids, 0);
        pool.cacheFullBlock(0, 7L);
        pool.free(ids, 0, 1);
        pool.allocate(1, ids, 0);
        assertThat(pool.cachedBlock(7L)).isNull();
        assertThat(pool.block(0).blockHash()).isEqualTo(KvBlock.NO_HASH);
    }

    @Test
    void shouldRejectDoubleFree() {
        BlockPool pool = new BlockPool(2, false);
        int[] ids = new int[1];
        pool.allocate(1, ids, 0);
        pool.free(ids, 0, 1);
        assertThatThrownBy(() -> pool.free(ids, 0, 1))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("double free of KV block 0");
    }

    @Test
    void shouldListCachedHashesInUseFirstThenFreeOnesFromLastToBeEvictedAndForgetEvictedOnes() {
        BlockPool pool = new BlockPool(4, true);
        int[] ids = new int[4];
        pool.allocate(4, ids, 0);
        pool.cacheFullBlock(0, 10L);
        pool.cacheFullBlock(1, 11L);
        pool.cacheFullBlock(2, 12L);
        // block 3 stays uncached; blocks 2 then 1 are freed (tail-first), 0 stays in use
        long cached = pool.prefixCacheVersion();
        pool.free(new int[] {2, 1}, 0, 2);
        assertThat(pool.prefixCacheVersion()).as("the listing's order changed").isNotEqualTo(cached);
        long[] out = new long[4];
        assertThat(pool.cachedBlockHashes(out)).isEqualTo(3);
        assertThat(out).startsWith(10L, 11L, 12L);

        long before = pool.prefixCacheVersion();
        int[] got = new int[1];
        pool.allocate(1, got, 0); // evicts block 2, the head of the free queue
        assertThat(got).containsExactly(2);
        assertThat(pool.prefixCacheVersion()).isNotEqualTo(before);
        assertThat(pool.cachedBlockHashes(out)).isEqualTo(2);
        assertThat(out).startsWith(10L, 11L);

        long[] one = new long[1];
        assertThat(pool.cachedBlockHashes(one)).as("bounded by the output array").isEqualTo(1);
        assertThat(one).containsExactly(10L);
    }

    @Test
    void shouldListNoCachedHashesWhenPrefixCachingIsOff() {
        BlockPool pool = new BlockPool(2, false);
        int[] ids = new int[1];
        pool.allocate(1, ids, 0);
        pool.cacheFullBlock(0, 10L);
        assertThat(pool.cachedBlockHashes(new long[2])).isZero();
    }
}
