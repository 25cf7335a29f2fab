package io.tandem.kvcache.transfer;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.PooledByteBufAllocator;
import io.tandem.kvcache.LayerProgress;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The byte layout of {@link KvFrame} and how {@link ServedPull} cuts page runs. */
class KvFrameTest {
    private static final PooledByteBufAllocator ALLOC = PooledByteBufAllocator.DEFAULT;

    @Test
    void shouldLayOutAPullAsDocumented() {
        ByteBuf frame = KvFrame.pull(ALLOC, 0x0102030405060708L, 9, 10, 32768, 2, 5, new int[] {7, 300});
        try {
            assertThat(ByteBufUtil.hexDump(frame)).isEqualTo(
                    "00000034" + "4b56" + "01" + "01" + "0102030405060708"    // length 52, magic, version, PULL, id
                            + "0000000000000009" + "000000000000000a"        // epoch, leaseId
                            + "00008000" + "00000002" + "00000005"           // pageBytes, layerFrom, layerTo
                            + "00000002" + "00000007" + "0000012c");         // n, blockIds
            assertThat(frame.readableBytes()).isEqualTo(KvFrame.PULL_FIXED_LENGTH + 8);
        } finally {
            frame.release();
        }
    }

    @Test
    void shouldLayOutPagesHeaderErrorAndCreditAsDocumented() {
        ByteBuf pages = KvFrame.pagesHeader(ALLOC, 3, 1, 4, 2, 0xCAFEBABE, 2 * 32768);
        ByteBuf error = KvFrame.error(ALLOC, 3, KvTransferStatus.UNKNOWN_LEASE, "gone");
        ByteBuf credit = KvFrame.credit(ALLOC, 1 << 20);
        try {
            assertThat(ByteBufUtil.hexDump(pages)).isEqualTo("0001001c" + "4b56" + "01" + "10" + "0000000000000003"
                    + "00000001" + "00000004" + "00000002" + "cafebabe");
            assertThat(ByteBufUtil.hexDump(error)).isEqualTo("00000014" + "4b56" + "01" + "12" + "0000000000000003"
                    + "00000002" + "676f6e65");
            assertThat(ByteBufUtil.hexDump(credit)).isEqualTo("00000014" + "4b56" + "01" + "02" + "0000000000000000"
                    + "0000000000100000");
        } finally {
            pages.release();
            error.release();
            credit.release();
        }
    }

    @Test
    void shouldLayOutReleaseAndRenewAsDocumented() {
        ByteBuf release = KvFrame.release(ALLOC, 9, 10);
        ByteBuf renew = KvFrame.renew(ALLOC, 9, 10);
        try {
            assertThat(ByteBufUtil.hexDump(release)).isEqualTo("0000001c" + "4b56" + "01" + "04" + "0000000000000000"
                    + "0000000000000009" + "000000000000000a");
            assertThat(ByteBufUtil.hexDump(renew)).isEqualTo("0000001c" + "4b56" + "01" + "05" + "0000000000000000"
                    + "0000000000000009" + "000000000000000a");
            assertThat(KvFrame.typeName(KvFrame.TYPE_RENEW)).isEqualTo("RENEW");
        } finally {
            release.release();
            renew.release();
        }
    }

    @Test
    void shouldCutAnErrorMessageAtTheLimit() {
        ByteBuf error = KvFrame.error(ALLOC, 1, KvTransferStatus.INTERNAL, "x".repeat(5000));
        try {
            assertThat(error.readableBytes()).isEqualTo(KvFrame.ERROR_FIXED_LENGTH + KvFrame.MAX_ERROR_MESSAGE_BYTES);
        } finally {
            error.release();
        }
    }

    @Test
    void shouldCutRunsAtGapsLayerEndsAndTheRunLimit() {
        ServedPull pull = finished(new ServedPull(1, 1, 1, 0, 2, new int[] {3, 4, 5, 9, 10, 2}));

        assertThat(runs(pull, 2)).containsExactly(
                "0:0+2", "0:2+1", "0:3+2", "0:5+1",
                "1:0+2", "1:2+1", "1:3+2", "1:5+1");
        assertThat(runs(finished(new ServedPull(1, 1, 1, 1, 2, new int[] {3, 4, 5, 9, 10, 2})), 100))
                .containsExactly("1:0+3", "1:3+2", "1:5+1");
        assertThat(new ServedPull(1, 1, 1, 0, 3, new int[0]).finished()).isTrue();
    }

    @Test
    void shouldSendOnlyFinalPagesLowestLayerFirstWhileThePrefillComputes() {
        int[] blocks = {3, 4, 5, 9, 10, 2};
        LayerProgress progress = new LayerProgress(3, blocks, 90, 16); // the last block holds 10 tokens
        ServedPull pull = new ServedPull(1, 1, 1, 0, 3, blocks);
        pull.setProgress(progress);
        assertThat(pull.nextReadyLayer()).as("nothing computed").isEqualTo(ServedPull.NONE_READY);

        progress.advanceAll(20); // a cached prefix: block 0 of every layer
        progress.advance(0, 64); // then a chunk: layer 0 up to block 3, layer 1 up to block 1
        progress.advance(1, 32);
        assertThat(runs(pull, 100)).containsExactly("0:0+3", "0:3+1", "1:0+2", "2:0+1");

        progress.advance(0, 90);
        assertThat(runs(pull, 100)).as("the partial last block is final at the prompt's end").containsExactly("0:4+1", "0:5+1");

        progress.finish();
        assertThat(runs(pull, 100)).containsExactly("1:2+1", "1:3+2", "1:5+1", "2:1+2", "2:3+2", "2:5+1");
        assertThat(pull.finished()).isTrue();
    }

    @Test
    void shouldMakeNoPageFinalAfterThePrefillFailed() {
        int[] blocks = {7, 8};
        LayerProgress progress = new LayerProgress(2, blocks, 32, 16);
        progress.advanceAll(32);
        assertThat(progress.isFinal(1, 8)).isTrue();
        List<String> woken = new ArrayList<>();
        progress.whenChanged(() -> woken.add("changed"));

        progress.fail();

        assertThat(woken).containsExactly("changed");
        assertThat(progress.isFinal(0, 7)).isFalse();
        assertThat(progress.isFailed()).isTrue();
        progress.whenChanged(() -> woken.add("after the end"));
        assertThat(woken).as("a wake-up registered after the end runs at once").hasSize(2);
    }

    private static ServedPull finished(ServedPull pull) {
        pull.setProgress(LayerProgress.finished());
        return pull;
    }

    /** The runs a server sends for {@code pull} now, in order, as {@code layer:firstIndex+count}. */
    private static List<String> runs(ServedPull pull, int maxPages) {
        List<String> runs = new ArrayList<>();
        for (int layer = pull.nextReadyLayer(); layer != ServedPull.NONE_READY; layer = pull.nextReadyLayer()) {
            int count = pull.nextRunLength(layer, maxPages);
            runs.add(layer + ":" + pull.nextIndex(layer) + "+" + count);
            pull.advance(layer, count);
        }
        return runs;
    }
}
