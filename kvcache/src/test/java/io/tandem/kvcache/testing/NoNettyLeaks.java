package io.tandem.kvcache.testing;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Fails a test class when Netty's leak detector found an unreleased {@code ByteBuf} while it ran.
 * Leaks surface only after the leaked buffer is garbage collected and the detector next tracks an
 * allocation, so this collects garbage and allocates a few times before looking; a leak that the
 * collector has not reached by then goes unnoticed (no false failures, possible misses).
 */
public final class NoNettyLeaks implements AfterAllCallback {

    private static final int ROUNDS = 10;

    @Override
    public void afterAll(ExtensionContext context) {
        for (int i = 0; i < ROUNDS && NettyLeakRecorder.LEAKS.isEmpty(); i++) {
            System.gc();
            ByteBuf probe = PooledByteBufAllocator.DEFAULT.buffer(8);
            probe.release();
        }
        assertThat(NettyLeakRecorder.LEAKS).as("Netty ByteBuf leaks").isEmpty();
    }
}
