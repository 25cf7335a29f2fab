package io.tandem.kvcache.transfer;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;

/**
 * A TCP proxy on loopback between a puller and a {@link KvPageServer} that breaks the server →
 * client stream of every connection after {@code afterBytes} bytes: flips that byte
 * ({@link Fault#CORRUPT}), stops forwarding while keeping the connection open ({@link
 * Fault#STALL}), or closes the connection ({@link Fault#CLOSE}). Client → server bytes pass
 * untouched. Threads are named {@code test-proxy-*}; {@link #close()} ends them.
 */
final class FaultyProxy implements AutoCloseable {
    enum Fault { CORRUPT, STALL, CLOSE }

    private final int targetPort;
    private final Fault fault;
    private final long afterBytes;
    private final ServerSocket listener;
    private final List<Socket> sockets = new CopyOnWriteArrayList<>();
    private final List<Thread> threads = new CopyOnWriteArrayList<>();
    private final CountDownLatch closed = new CountDownLatch(1);
    /** Counts down when a connection's fault has happened. */
    final CountDownLatch faulted = new CountDownLatch(1);

    FaultyProxy(int targetPort, Fault fault, long afterBytes) throws IOException {
        this.targetPort = targetPort;
        this.fault = fault;
        this.afterBytes = afterBytes;
        this.listener = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        start("test-proxy-accept", this::acceptLoop);
    }

    int port() {
        return listener.getLocalPort();
    }

    private void acceptLoop() {
        try {
            while (true) {
                Socket client = listener.accept();
                Socket server = new Socket(InetAddress.getLoopbackAddress(), targetPort);
                sockets.add(client);
                sockets.add(server);
                start("test-proxy-up", () -> pipe(client, server, false));
                start("test-proxy-down", () -> pipe(server, client, true));
            }
        } catch (IOException e) {
            // listener closed
        }
    }

    private void pipe(Socket from, Socket to, boolean faulty) {
        byte[] buffer = new byte[64 << 10];
        long position = 0;
        try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
            int n;
            while ((n = in.read(buffer)) > 0) {
                if (faulty && position + n > afterBytes && faulted.getCount() > 0) {
                    int at = (int) (afterBytes - position);
                    switch (fault) {
                        case CORRUPT -> buffer[at] ^= (byte) 0xFF;
                        case STALL -> {
                            out.write(buffer, 0, at);
                            out.flush();
                            faulted.countDown();
                            closed.await();
                            return;
                        }
                        case CLOSE -> {
                            out.write(buffer, 0, at);
                            out.flush();
                            faulted.countDown();
                            from.close();
                            to.close();
                            return;
                        }
                    }
                    faulted.countDown();
                }
                out.write(buffer, 0, n);
                position += n;
            }
        } catch (IOException e) {
            // one side closed: close the other
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            closeQuietly(from);
            closeQuietly(to);
        }
    }

    private void start(String name, Runnable body) {
        Thread thread = new Thread(body, name);
        thread.setDaemon(true);
        threads.add(thread);
        thread.start();
    }

    @Override
    public void close() throws IOException {
        closed.countDown();
        listener.close();
        for (Socket socket : sockets) {
            closeQuietly(socket);
        }
        try {
            for (Thread thread : threads) {
                thread.join(5_000);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void closeQuietly(Socket socket) {
        try {
            socket.close();
        } catch (IOException e) {
            // closing anyway
        }
    }
}
