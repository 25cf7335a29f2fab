package io.tandem.kvcache.transfer;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.PooledByteBufAllocator;
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
        ServedPull pull = new ServedPull(1, 1, 1, 0, 2, new int[] {3, 4, 5, 9, 10, 2});

        assertThat(runs(pull, 2)).containsExactly(
                "0:0+2", "0:2+1", "0:3+2", "0:5+1",
                "1:0+2", "1:2+1", "1:3+2", "1:5+1");
        assertThat(runs(new ServedPull(1, 1, 1, 1, 2, new int[] {3, 4, 5, 9, 10, 2}), 100))
                .containsExactly("1:0+3", "1:3+2", "1:5+1");
        assertThat(new ServedPull(1, 1, 1, 0, 3, new int[0]).finished()).isTrue();
    }

    private static List<String> runs(ServedPull pull, int maxPages) {
        List<String> runs = new ArrayList<>();
        while (!pull.finished()) {
            int count = pull.nextRunLength(maxPages);
            runs.add(pull.layer() + ":" + pull.index() + "+" + count);
            pull.advance(count);
        }
        return runs;
    }
}
