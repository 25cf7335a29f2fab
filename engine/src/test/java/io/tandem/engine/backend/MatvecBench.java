package io.tandem.engine.backend;

import io.tandem.engine.tensor.GgmlType;
import io.tandem.engine.tensor.RandomWeights;
import io.tandem.engine.tensor.WeightMatrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.Arrays;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Decode matvec throughput against a plain memory read of the same bytes, measured in the same
 * run, interleaved round by round; plus fused vs separate projections and prefill GFLOP/s.
 *
 * <p>Each working set holds enough copies of the matrix to exceed the last-level cache
 * ({@code -Dbench.mib}, default 1024 MiB), so both the read baseline and the kernel stream from
 * DRAM as a decode step does. GB/s counts weight bytes only. Run:
 * <pre>
 *   java --add-modules jdk.incubator.vector -cp engine/target/classes:engine/target/test-classes \
 *        io.tandem.engine.backend.MatvecBench
 * </pre>
 */
public final class MatvecBench {
    private static final VectorSpecies<Long> L = LongVector.SPECIES_PREFERRED;
    private static final long MIB = 1L << 20;
    private static final int ROUNDS = Integer.getInteger("bench.rounds", 7);
    private static final long WORKING_SET = Long.getLong("bench.mib", 1024) * MIB;
    /** Comma-separated sections to run: bandwidth, fused, prefill, layers, dispatch (default all but layers). */
    private static final String SECTIONS =
            System.getProperty("bench.sections", "bandwidth,fused,prefill,dispatch");

    private MatvecBench() {
    }

    public static void main(String[] args) {
        int maxThreads = Math.min(2, Runtime.getRuntime().availableProcessors());
        System.out.printf("MatvecBench: %d rounds, working set %d MiB, best (median) GB/s of weight bytes%n",
                ROUNDS, WORKING_SET / MIB);
        if (SECTIONS.contains("bandwidth")) {
            for (GgmlType type : new GgmlType[] {GgmlType.Q8_0, GgmlType.F32}) {
                for (int[] shape : new int[][] {{8192, 2048}, {2048, 8192}}) {
                    bandwidth(type, shape[0], shape[1], maxThreads);
                }
            }
        }
        if (SECTIONS.contains("fused")) {
            fusedProjections(maxThreads);
        }
        if (SECTIONS.contains("prefill")) {
            prefill(maxThreads);
        }
        if (SECTIONS.contains("layers")) {
            for (String type : System.getProperty("bench.types", "Q8_0").split(",")) {
                layers(maxThreads, GgmlType.valueOf(type.trim()));
            }
        }
        if (SECTIONS.contains("dispatch")) {
            dispatch(maxThreads);
        }
    }

    /**
     * The projections of Llama-3.2-1B decoder layers ([2048, 2048] x2, [512, 2048] x2, [8192, 2048] x2,
     * [2048, 8192]), as many layers as exceed the working set, each times an {@code n}-token batch
     * ({@code -Dbench.tokens}, which should start with 1): the weights stream from DRAM as in a
     * decode step. Prints tokens/s and its ratio to the first batch size's, measured in the same run.
     */
    private static void layers(int threads, GgmlType type) {
        int[][] shapes = {{2048, 2048}, {512, 2048}, {512, 2048}, {2048, 2048}, {8192, 2048}, {8192, 2048},
                {2048, 8192}};
        long layerWeights = 0;
        for (int[] shape : shapes) {
            layerWeights += (long) shape[0] * shape[1];
        }
        try (Arena arena = Arena.ofShared(); CpuBackend backend = new CpuBackend(threads)) {
            java.util.List<WeightMatrix> ws = new java.util.ArrayList<>();
            long bytes = 0;
            for (int l = 0; bytes < WORKING_SET; l++) {
                for (int i = 0; i < shapes.length; i++) {
                    WeightMatrix w = RandomWeights.of(type, shapes[i][0], shapes[i][1], 100 * l + i, arena);
                    ws.add(w);
                    bytes += w.rows() * w.rowBytes();
                }
            }
            int numLayers = ws.size() / shapes.length;
            double baseline = Double.NaN;
            for (String tokens : System.getProperty("bench.tokens", "1,8,32").split(",")) {
                int n = Integer.parseInt(tokens.trim());
                float[] x = RandomWeights.floats(n * 8192, 5);
                float[] out = new float[n * 8192];
                double[] seconds = new double[ROUNDS];
                for (int round = -2; round < ROUNDS; round++) {
                    long t0 = System.nanoTime();
                    for (WeightMatrix w : ws) {
                        backend.matmul(w, x, out, n);
                    }
                    if (round >= 0) {
                        seconds[round] = (System.nanoTime() - t0) / 1e9;
                    }
                }
                double best = min(seconds);
                double tokensPerSecond = n / best;
                if (Double.isNaN(baseline)) {
                    baseline = tokensPerSecond;
                }
                System.out.printf("layers %s x%d (%d MiB), n=%d, threads=%d: %.2f tokens/s, %.1f GFLOP/s, %.1f GB/s"
                                + " (%.2fx n=%s; median %.2f tokens/s)%n", type, numLayers, bytes / MIB, n, threads,
                        tokensPerSecond, 2.0 * n * layerWeights * numLayers / best / 1e9, bytes / best / 1e9,
                        tokensPerSecond / baseline, System.getProperty("bench.tokens", "1,8,32").split(",")[0],
                        n / median(seconds));
            }
        }
    }

    private static void bandwidth(GgmlType type, int rows, int cols, int maxThreads) {
        long bytes = type.byteSize((long) rows * cols);
        int copies = (int) Math.max(1, (WORKING_SET + bytes - 1) / bytes);
        try (Arena arena = Arena.ofShared()) {
            WeightMatrix first = RandomWeights.of(type, rows, cols, 1, arena);
            WeightMatrix[] ws = new WeightMatrix[copies];
            ws[0] = first;
            for (int c = 1; c < copies; c++) {
                MemorySegment seg = arena.allocate(bytes, 64);
                MemorySegment.copy(first.data(), 0, seg, 0, bytes);
                ws[c] = WeightMatrix.of(type, seg, rows, cols);
            }
            float[] x = RandomWeights.floats(cols, 2);
            float[] out = new float[rows];
            double total = (double) bytes * copies;
            for (int threads = 1; threads <= maxThreads; threads++) {
                try (CpuBackend backend = new CpuBackend(threads)) {
                    long[] sink = new long[1];
                    double[] read = new double[ROUNDS];
                    double[] kernel = new double[ROUNDS];
                    for (int round = -2; round < ROUNDS; round++) {
                        long t0 = System.nanoTime();
                        readAll(backend, ws, sink);
                        long t1 = System.nanoTime();
                        for (WeightMatrix w : ws) {
                            backend.matmul(w, x, out, 1);
                        }
                        long t2 = System.nanoTime();
                        if (round >= 0) {
                            read[round] = total / (t1 - t0);
                            kernel[round] = total / (t2 - t1);
                        }
                    }
                    System.out.printf("%-5s [%5d, %5d] x%-3d threads=%d  read %5.1f (%5.1f)  matvec %5.1f (%5.1f)  = %3.0f%% of read  [%d]%n",
                            type, rows, cols, copies, threads, max(read), median(read), max(kernel), median(kernel),
                            100 * max(kernel) / max(read), sink[0] & 1);
                }
            }
        }
    }

    /**
     * The memory-read baseline: sums every 8-byte word of every matrix, split by rows like a
     * matmul, each chunk read as four sequential streams (one per quarter), the access pattern
     * of the matvec kernels.
     */
    private static void readAll(CpuBackend backend, WeightMatrix[] ws, long[] sink) {
        WorkerPool pool = backend.pool();
        int chunks = pool.parallelism() * CpuBackend.CHUNKS_PER_THREAD;
        long[] partial = new long[chunks * 8];
        for (WeightMatrix w : ws) {
            long rowsPerChunk = (w.rows() + chunks - 1) / chunks;
            MemorySegment data = w.data();
            long rowBytes = w.rowBytes();
            pool.parallelFor(chunks, c -> {
                long from = c * rowsPerChunk * rowBytes;
                long to = Math.min(w.rows(), (c + 1) * rowsPerChunk) * rowBytes;
                partial[c * 8] += sum4(data, from, to);
            });
        }
        sink[0] += Arrays.stream(partial).sum();
    }

    private static long sum4(MemorySegment s, long from, long to) {
        int step = L.vectorByteSize();
        long quarter = (to - from) / 4 / step * step;
        LongVector acc0 = LongVector.zero(L);
        LongVector acc1 = LongVector.zero(L);
        LongVector acc2 = LongVector.zero(L);
        LongVector acc3 = LongVector.zero(L);
        for (long i = from; i < from + quarter; i += step) {
            acc0 = acc0.add(LongVector.fromMemorySegment(L, s, i, ByteOrder.LITTLE_ENDIAN));
            acc1 = acc1.add(LongVector.fromMemorySegment(L, s, i + quarter, ByteOrder.LITTLE_ENDIAN));
            acc2 = acc2.add(LongVector.fromMemorySegment(L, s, i + 2 * quarter, ByteOrder.LITTLE_ENDIAN));
            acc3 = acc3.add(LongVector.fromMemorySegment(L, s, i + 3 * quarter, ByteOrder.LITTLE_ENDIAN));
        }
        long tail = 0;
        for (long i = from + 4 * quarter; i < to; i++) {
            tail += s.get(java.lang.foreign.ValueLayout.JAVA_BYTE, i);
        }
        return acc0.add(acc1).add(acc2).add(acc3).reduceLanes(VectorOperators.ADD) + tail;
    }

    /** Llama-3.2-1B layer shapes: Q/K/V and gate/up as one dispatch vs separate matmuls. */
    private static void fusedProjections(int threads) {
        try (Arena arena = Arena.ofShared(); CpuBackend backend = new CpuBackend(threads)) {
            int layers = 16;
            WeightMatrix[][] w = new WeightMatrix[layers][5];
            for (int l = 0; l < layers; l++) {
                w[l][0] = RandomWeights.of(GgmlType.Q8_0, 2048, 2048, 10 + l, arena);
                w[l][1] = RandomWeights.of(GgmlType.Q8_0, 512, 2048, 20 + l, arena);
                w[l][2] = RandomWeights.of(GgmlType.Q8_0, 512, 2048, 30 + l, arena);
                w[l][3] = RandomWeights.of(GgmlType.Q8_0, 8192, 2048, 40 + l, arena);
                w[l][4] = RandomWeights.of(GgmlType.Q8_0, 8192, 2048, 50 + l, arena);
            }
            float[] x = RandomWeights.floats(2048, 3);
            float[] q = new float[2048];
            float[] k = new float[512];
            float[] v = new float[512];
            float[] g = new float[8192];
            float[] u = new float[8192];
            double[] separate = new double[ROUNDS];
            double[] fused = new double[ROUNDS];
            for (int round = -3; round < ROUNDS; round++) {
                long t0 = System.nanoTime();
                for (WeightMatrix[] l : w) {
                    backend.matmul(l[0], x, q, 1);
                    backend.matmul(l[1], x, k, 1);
                    backend.matmul(l[2], x, v, 1);
                    backend.matmul(l[3], x, g, 1);
                    backend.matmul(l[4], x, u, 1);
                }
                long t1 = System.nanoTime();
                for (WeightMatrix[] l : w) {
                    backend.matmul3(l[0], l[1], l[2], x, q, k, v, 1);
                    backend.matmul2(l[3], l[4], x, g, u, 1);
                }
                long t2 = System.nanoTime();
                if (round >= 0) {
                    separate[round] = (t1 - t0) / 1e6;
                    fused[round] = (t2 - t1) / 1e6;
                }
            }
            System.out.printf("16 layers QKV+gate/up Q8_0, threads=%d: separate %.2f ms (median %.2f), fused %.2f ms (median %.2f)%n",
                    threads, min(separate), median(separate), min(fused), median(fused));
        }
    }

    /** Prefill: the Llama-3.2-1B projection shapes in Q8_0 times a 256-token prompt. */
    private static void prefill(int maxThreads) {
        for (String tokens : System.getProperty("bench.tokens", "256").split(",")) {
            for (String type : System.getProperty("bench.types", "Q8_0").split(",")) {
                prefill(maxThreads, Integer.parseInt(tokens.trim()), GgmlType.valueOf(type.trim()));
            }
        }
    }

    /** GFLOP/s of one {@code [rows, cols] x n tokens} matmul: decode batches (n < 32) and prefill chunks alike. */
    private static void prefill(int maxThreads, int n, GgmlType type) {
        for (int[] shape : new int[][] {{2048, 2048}, {8192, 2048}, {2048, 8192}}) {
            int rows = shape[0];
            int cols = shape[1];
            try (Arena arena = Arena.ofShared()) {
                WeightMatrix w = RandomWeights.of(type, rows, cols, 4, arena);
                float[] x = RandomWeights.floats(n * cols, 5);
                float[] out = new float[n * rows];
                for (int threads = 1; threads <= maxThreads; threads++) {
                    try (CpuBackend backend = new CpuBackend(threads)) {
                        double[] gflops = new double[ROUNDS];
                        for (int round = -2; round < ROUNDS; round++) {
                            long t0 = System.nanoTime();
                            backend.matmul(w, x, out, n);
                            long t1 = System.nanoTime();
                            if (round >= 0) {
                                gflops[round] = 2.0 * n * rows * cols / (t1 - t0);
                            }
                        }
                        System.out.printf("matmul %s [%d, %d] x %d tokens, threads=%d: %.1f GFLOP/s (median %.1f)%n",
                                type, rows, cols, n, threads, max(gflops), median(gflops));
                    }
                }
            }
        }
    }

    /** Cost of one parallel dispatch with spinning workers, and a small matmul on 1 vs 2 threads. */
    private static void dispatch(int maxThreads) {
        com.sun.management.ThreadMXBean mx =
                (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        try (Arena arena = Arena.ofShared()) {
            WeightMatrix k = RandomWeights.of(GgmlType.Q8_0, 512, 2048, 6, arena);
            float[] x = RandomWeights.floats(2048, 7);
            float[] out = new float[512];
            for (int threads = 1; threads <= maxThreads; threads++) {
                try (CpuBackend backend = new CpuBackend(threads)) {
                    int calls = 20_000;
                    long[] sink = new long[8];
                    double emptyNs = Double.MAX_VALUE;
                    double matmulNs = Double.MAX_VALUE;
                    long allocated = 0;
                    for (int round = 0; round < ROUNDS; round++) {
                        long t0 = System.nanoTime();
                        for (int i = 0; i < calls; i++) {
                            backend.pool().parallelFor(2 * threads, c -> sink[c & 7]++);
                        }
                        long t1 = System.nanoTime();
                        long b0 = mx.getCurrentThreadAllocatedBytes();
                        for (int i = 0; i < calls / 10; i++) {
                            backend.matmul(k, x, out, 1);
                        }
                        long t2 = System.nanoTime();
                        allocated = mx.getCurrentThreadAllocatedBytes() - b0;
                        emptyNs = Math.min(emptyNs, (t1 - t0) / (double) calls);
                        matmulNs = Math.min(matmulNs, (t2 - t1) / (calls / 10.0));
                    }
                    System.out.printf("threads=%d: empty parallelFor %.2f us, Q8_0 [512, 2048] matvec %.1f us (%.1f GB/s), caller allocated %d B per %d matmuls%n",
                            threads, emptyNs / 1e3, matmulNs / 1e3, k.data().byteSize() / matmulNs, allocated, calls / 10);
                }
            }
        }
    }

    private static double max(double[] a) {
        return Arrays.stream(a).max().orElseThrow();
    }

    private static double min(double[] a) {
        return Arrays.stream(a).min().orElseThrow();
    }

    private static double median(double[] a) {
        double[] s = a.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }
}
