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
}
