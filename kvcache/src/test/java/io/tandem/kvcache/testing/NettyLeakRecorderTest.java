package io.tandem.kvcache.testing;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Proves the leak check the KV transfer tests rely on can fail: a dropped buffer is recorded. */
class NettyLeakRecorderTest {

    @Test
    @Timeout(30)
    void shouldRecordBufferThatWasNeverReleased() {
        NettyLeakRecorder.LEAKS.clear();
        leakOneBuffer();
        for (int i = 0; i < 1_000 && NettyLeakRecorder.LEAKS.isEmpty(); i++) {
            System.gc();
            PooledByteBufAllocator.DEFAULT.buffer(8).release();
        }
        try {
            assertThat(NettyLeakRecorder.LEAKS).anySatisfy(leak -> assertThat(leak).contains("ByteBuf"));
        } finally {
            NettyLeakRecorder.LEAKS.clear();
        }
    }

    private static void leakOneBuffer() {
        ByteBuf leaked = PooledByteBufAllocator.DEFAULT.buffer(16);
        leaked.writeInt(42);
    }
}
