package io.tandem.kvcache.transfer;

import static io.tandem.kvcache.transfer.KvTransferFixture.await;
import static io.tandem.kvcache.transfer.KvTransferFixture.serve;
import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.UnpooledByteBufAllocator;
import io.tandem.kvcache.KvCacheSpec;
import io.tandem.kvcache.KvDtype;
import io.tandem.kvcache.KvHandle;
import io.tandem.kvcache.testing.NoNettyLeaks;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The server against a hand-written client on a plain socket: what exactly goes on the wire, and
 * that it never sends more payload than the credit it was given.
 */
@ExtendWith(NoNettyLeaks.class)
@Timeout(30)
class KvPageServerTest {
    private static final KvCacheSpec SPEC = new KvCacheSpec(2, 1, 8, 4, KvDtype.F32);
    private static final long PAGE = SPEC.pageBytes();

    @Test
    void shouldSendNoMorePayloadThanTheCreditGranted() throws Exception {
        try (TestPageProvider provider = new TestPageProvider("p0", 1, SPEC, 16, 1);
                KvPageServer server = serve(provider);
                RawClient client = new RawClient(server.port())) {
            KvHandle handle = provider.lease(0, 1, 2, 3, 4, 5);
            client.send(KvFrame.credit(client.alloc, 3 * PAGE));
            client.send(pull(client, 1, handle));

            assertThat(client.readPayloadUntilError(2)).as("pages sent on a credit of 3").isEqualTo(3 * PAGE);
            client.send(KvFrame.credit(client.alloc, 2 * PAGE + PAGE / 2));
            assertThat(client.readPayloadUntilError(3)).as("pages sent on 2.5 more").isEqualTo(2 * PAGE);
            client.send(KvFrame.credit(client.alloc, 100 * PAGE));
            Frame frame;
            long rest = 0;
            while ((frame = client.read()).type != KvFrame.TYPE_DONE) {
                assertThat(frame.type).isEqualTo(KvFrame.TYPE_PAGES);
                rest += frame.payload.length;
            }
            assertThat(rest).isEqualTo(handle.byteSize() - 5 * PAGE);
            assertThat(frame.requestId).isEqualTo(1);
        }
    }

    @Test
    void shouldSendOneFramePerRunOfConsecutiveBlocksWithItsCrc() throws Exception {
        try (TestPageProvider provider = new TestPageProvider("p0", 1, SPEC, 16, 2);
                KvPageServer server = serve(provider);
                RawClient client = new RawClient(server.port())) {
            KvHandle handle = provider.lease(7, 8, 9, 3, 12, 13);
            client.send(KvFrame.credit(client.alloc, 1 << 20));
            client.send(KvFrame.pull(client.alloc, 5, handle.epoch(), handle.leaseId(), PAGE, 1, 2, handle.blockIds()));

            int[][] expected = {{0, 3}, {3, 1}, {4, 2}};
            for (int[] run : expected) {
                Frame frame = client.read();
                assertThat(frame.type).isEqualTo(KvFrame.TYPE_PAGES);
                assertThat(frame.requestId).isEqualTo(5);
                assertThat(new int[] {frame.layer, frame.firstIndex, frame.count}).containsExactly(1, run[0], run[1]);
                MemorySegment source = provider.storage().layer(1)
                        .asSlice(provider.storage().pageOffset(handle.blockIds()[run[0]]), run[1] * PAGE);
                assertThat(MemorySegment.ofArray(frame.payload).mismatch(source)).isEqualTo(-1L);
                CRC32C crc = new CRC32C();
                crc.update(frame.payload);
                assertThat(frame.crc32c).isEqualTo((int) crc.getValue());
            }
            assertThat(client.read().type).isEqualTo(KvFrame.TYPE_DONE);
        }
    }

    @Test
    void shouldAnswerALayerRangeOutsideTheStorageWithAnErrorCode() throws Exception {
        try (TestPageProvider provider = new TestPageProvider("p0", 1, SPEC, 16, 3);
                KvPageServer server = serve(provider);
                RawClient client = new RawClient(server.port())) {
            KvHandle handle = provider.lease(1);
            client.send(KvFrame.pull(client.alloc, 9, handle.epoch(), handle.leaseId(), PAGE, 1, 3, handle.blockIds()));

            Frame frame = client.read();

            assertThat(frame.type).isEqualTo(KvFrame.TYPE_ERROR);
            assertThat(frame.code).isEqualTo(KvTransferStatus.BAD_LAYER_RANGE.wireCode());
            assertThat(frame.message).contains("layers [1, 3)");
        }
    }

    @Test
    void shouldCloseTheConnectionOnABadMagic() throws Exception {
        try (TestPageProvider provider = new TestPageProvider("p0", 1, SPEC, 16, 4);
                KvPageServer server = serve(provider);
                RawClient client = new RawClient(server.port())) {
            await("the connection", () -> server.openConnections() == 1);
            ByteBuf bad = KvFrame.credit(client.alloc, 1);
            bad.setShort(KvFrame.MAGIC_OFFSET, 0x1234);
            client.send(bad);

            assertThat(client.in.read()).as("end of stream").isEqualTo(-1);
            await("the server to drop the connection", () -> server.openConnections() == 0);
        }
    }

    private static ByteBuf pull(RawClient client, long requestId, KvHandle handle) {
        return KvFrame.pull(client.alloc, requestId, handle.epoch(), handle.leaseId(), PAGE, 0, SPEC.numLayers(),
                handle.blockIds());
    }

    /** A decoded server frame. */
    private static final class Frame {
        byte type;
        long requestId;
        int layer;
        int firstIndex;
        int count;
        int crc32c;
        byte[] payload = new byte[0];
        int code;
        String message;
    }

    /** A blocking protocol client on a plain socket. */
    private static final class RawClient implements AutoCloseable {
        final UnpooledByteBufAllocator alloc = new UnpooledByteBufAllocator(false);
        final Socket socket;
        final DataInputStream in;
        final OutputStream out;
        /** Request id of the next probe pull, which the server answers with an error at once. */
        private long probe = 1000;

        RawClient(int port) throws IOException {
            socket = new Socket(InetAddress.getLoopbackAddress(), port);
            in = new DataInputStream(socket.getInputStream());
            out = socket.getOutputStream();
        }

        void send(ByteBuf frame) throws IOException {
            try {
                byte[] bytes = new byte[frame.readableBytes()];
                frame.readBytes(bytes);
                out.write(bytes);
                out.flush();
            } finally {
                frame.release();
            }
        }

        /**
         * Sends a pull for an unknown lease and reads frames until its ERROR: since the server writes
         * frames in order, every page it sent before that is counted, and it sent none after.
         *
         * @return payload bytes read before the error
         */
        long readPayloadUntilError(int expectedFrames) throws IOException {
            long requestId = probe++;
            send(KvFrame.pull(alloc, requestId, 1, 987_654, PAGE, 0, 1, new int[] {0}));
            long payload = 0;
            Frame frame;
            int frames = 0;
            while ((frame = read()).type != KvFrame.TYPE_ERROR) {
                assertThat(frame.type).isEqualTo(KvFrame.TYPE_PAGES);
                payload += frame.payload.length;
                frames++;
            }
            assertThat(frame.requestId).isEqualTo(requestId);
            assertThat(frame.code).isEqualTo(KvTransferStatus.UNKNOWN_LEASE.wireCode());
            assertThat(frames).isLessThanOrEqualTo(expectedFrames);
            return payload;
        }

        Frame read() throws IOException {
            int length = in.readInt();
            assertThat(in.readShort()).isEqualTo(KvFrame.MAGIC);
            assertThat(in.readByte()).isEqualTo(KvFrame.VERSION);
            Frame frame = new Frame();
            frame.type = in.readByte();
            frame.requestId = in.readLong();
            int body = length - (KvFrame.HEADER_LENGTH - KvFrame.LENGTH_FIELD_LENGTH);
            switch (frame.type) {
                case KvFrame.TYPE_PAGES -> {
                    frame.layer = in.readInt();
                    frame.firstIndex = in.readInt();
                    frame.count = in.readInt();
                    frame.crc32c = in.readInt();
                    frame.payload = in.readNBytes(body - 16);
                }
                case KvFrame.TYPE_ERROR -> {
                    frame.code = in.readInt();
                    frame.message = new String(in.readNBytes(body - 4), StandardCharsets.UTF_8);
                }
                default -> assertThat(body).isZero();
            }
            return frame;
        }

        @Override
        public void close() throws IOException {
            socket.close();
        }
    }
}
