package io.tandem.engine.backend;

import io.tandem.engine.tensor.PackedActivations;
import io.tandem.engine.tensor.WeightMatrix;
import java.lang.foreign.MemorySegment;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The CPU backend: Java Vector API kernels; matmuls are split by rows over a fixed
 * {@link WorkerPool} of {@code threads - 1} workers plus the calling thread, created at
 * construction and stopped by {@link #close()}. The other kernels are light and run on the
 * calling thread.
 *
 * <p>Dispatch is tuned for decode latency: a matmul below {@link #MIN_PARALLEL_MACS}
 * multiply-adds runs on the caller alone; larger ones are cut into about
 * {@link #CHUNKS_PER_THREAD} chunks per thread, claimed dynamically so a late-waking worker
 * delays nothing; idle workers spin {@code spinNanos} before parking, which covers the gap
 * between the matmuls of one layer. {@link #matmul2} and {@link #matmul3} put the projections
 * that share an input into one dispatch.
 *
 * <p>Shared by the engines of one JVM ({@code tandem serve} runs prefill and decode on the same
 * cores): dispatches are serialized by a lock, so two engine threads interleave kernel by kernel
 * instead of oversubscribing the cores with two pools.
 */
public final class CpuBackend implements Backend {
    /** Matmuls with fewer multiply-adds run on the caller: about 25 us of single-thread work. */
    static final long MIN_PARALLEL_MACS = 1L << 18;
    /** Chunks per thread: enough to rebalance around a descheduled thread, few enough to claim cheaply. */
    static final int CHUNKS_PER_THREAD = 4;
    /** A chunk carries at least this much work so that claiming it stays negligible. */
    static final long MIN_CHUNK_MACS = 1L << 16;
    /** Chunk boundaries are multiples of the decode kernels' row tile (the prefill kernel's is {@link PackedActivations#ROW_TILE}). */
    static final int ROW_ALIGN = 4;
    /** Element-wise kernels over fewer elements (or RMSNorm over fewer) run on the caller alone. */
    static final int MIN_PARALLEL_ELEMENTS = 1 << 16;
    /** Default idle spin of a worker before it parks. */
    static final long DEFAULT_SPIN_NANOS = TimeUnit.MICROSECONDS.toNanos(500);

    private final WorkerPool pool;
    private final MatmulJob job = new MatmulJob();
    private final ElementwiseJob elementwise = new ElementwiseJob();
    private final ReentrantLock dispatchLock = new ReentrantLock();
    private final AtomicBoolean closed = new AtomicBoolean();

    /** One thread per available processor. */
    public CpuBackend() {
        this(Runtime.getRuntime().availableProcessors());
    }

    /**
     * @param threads degree of parallelism, the calling thread included; at least 1
     * @throws IllegalArgumentException if {@code threads < 1}
     */
    public CpuBackend(int threads) {
        this(threads, DEFAULT_SPIN_NANOS);
    }

    /**
     * @param threads   degree of parallelism, the calling thread included; at least 1
     * @param spinNanos how long an idle worker spins before parking, in nanoseconds
     */
    public CpuBackend(int threads, long spinNanos) {
        this.pool = new WorkerPool(threads, spinNanos, "tandem-cpu");
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public int threads() {
        return pool.parallelism();
    }

    @Override
    public void matmul(WeightMatrix w, float[] x, float[] out, int n) {
        checkMatmul(w, x, out, n, w.cols());
        acquire();
        job.set(x, n);
        job.add(w, out);
        run(job);
    }

    @Override
    public void matmul2(WeightMatrix w0, WeightMatrix w1, float[] x, float[] out0, float[] out1, int n) {
        checkMatmul(w0, x, out0, n, w0.cols());
        checkMatmul(w1, x, out1, n, w0.cols());
        acquire();
        job.set(x, n);
        job.add(w0, out0);
        job.add(w1, out1);
        run(job);
    }

    @Override
    public void matmul3(WeightMatrix w0, WeightMatrix w1, WeightMatrix w2, float[] x,
                        float[] out0, float[] out1, float[] out2, int n) {
        checkMatmul(w0, x, out0, n, w0.cols());
        checkMatmul(w1, x, out1, n, w0.cols());
        checkMatmul(w2, x, out2, n, w0.cols());
        acquire();
        job.set(x, n);
        job.add(w0, out0);
        job.add(w1, out1);
        job.add(w2, out2);
        run(job);
    }

    private static void checkMatmul(WeightMatrix w, float[] x, float[] out, int n, int cols) {
        if (n < 1) {
            throw new IllegalArgumentException("n must be at least 1, got " + n);
        }
        if (w.cols() != cols) {
            throw new IllegalArgumentException("fused matmul needs equal cols: " + w + " vs cols " + cols);
        }
        Objects.checkFromIndexSize(0, (long) n * w.cols(), x.length);
        Objects.checkFromIndexSize(0, (long) n * w.rows(), out.length);
    }

    private void run(MatmulJob j) {
        try {
            if (closed.get()) {
                throw new IllegalStateException("CpuBackend is closed");
            }
            j.packIfLarge();
            long macs = j.totalRows * (long) j.cols * j.n;
            int p = pool.parallelism();
            if (p == 1 || macs < MIN_PARALLEL_MACS) {
                j.runSerial();
                return;
            }
            long minRows = Math.max(1, MIN_CHUNK_MACS / ((long) j.cols * j.n));
            long rows = Math.max(minRows, ceilDiv(j.totalRows, (long) p * CHUNKS_PER_THREAD));
            int align = j.usePacked ? PackedActivations.ROW_TILE : ROW_ALIGN;
            j.plan((int) Math.min(Integer.MAX_VALUE, ceilDiv(rows, align) * align));
            pool.parallelFor(j.chunks, j);
        } finally {
            j.clear();
            dispatchLock.unlock();
        }
    }

    private void acquire() {
        dispatchLock.lock();
    }

    @Override
    public int parallelSlots() {
        return pool.parallelism() * CHUNKS_PER_THREAD;
    }

    @Override
    public void parallelFor(int count, RangeTask task) {
        if (count <= 0) {
            return;
        }
        int chunks = Math.min(count, parallelSlots());
        if (pool.parallelism() == 1 || chunks == 1) {
            task.run(0, count, 0);
            return;
        }
        dispatchLock.lock();
        try {
            if (closed.get()) {
                throw new IllegalStateException("CpuBackend is closed");
            }
            pool.parallelFor(chunks, c -> task.run((int) ((long) count * c / chunks),
                    (int) ((long) count * (c + 1) / chunks), c));
        } finally {
            dispatchLock.unlock();
        }
    }

    private static long ceilDiv(long a, long b) {
        return (a + b - 1) / b;
    }

    @Override
    public void rmsNorm(float[] x, float[] weight, float[] out, int n, int dim, float eps) {
        Objects.checkFromIndexSize(0, dim, weight.length);
        Objects.checkFromIndexSize(0, (long) n * dim, x.length);
        Objects.checkFromIndexSize(0, (long) n * dim, out.length);
        if ((long) n * dim < MIN_PARALLEL_ELEMENTS || n == 1) {
            for (int t = 0; t < n; t++) {
                VectorMath.rmsNorm(x, t * dim, weight, out, t * dim, dim, eps);
            }
            return;
        }
        dispatchLock.lock();
        try {
            elementwise.set(ElementwiseJob.Op.RMS_NORM, x, weight, out, n * dim, dim, eps);
            parallelFor(n, elementwise);
        } finally {
            elementwise.clear();
            dispatchLock.unlock();
        }
    }

    @Override
    public void rope(float[] x, int n, int numHeads, int headDim, int rotaryDim, int[] positions,
                     RopeStyle style, float theta, float[] freqFactors) {
        RotaryEmbedding.apply(x, n, numHeads, headDim, rotaryDim, positions, style, theta, freqFactors);
    }

    @Override
    public void swiglu(float[] gate, float[] up, int len) {
        if (len < MIN_PARALLEL_ELEMENTS) {
            VectorMath.swiglu(gate, up, len);
            return;
        }
        runElementwise(ElementwiseJob.Op.SWIGLU, gate, up, len);
    }

    @Override
    public void add(float[] acc, float[] x, int len) {
        if (len < MIN_PARALLEL_ELEMENTS) {
            VectorMath.add(acc, x, len);
            return;
        }
        runElementwise(ElementwiseJob.Op.ADD, acc, x, len);
    }

    private void runElementwise(ElementwiseJob.Op op, float[] a, float[] b, int len) {
        dispatchLock.lock();
        try {
            elementwise.set(op, a, b, null, len, 0, 0f);
            parallelFor((len + ElementwiseJob.LANES - 1) / ElementwiseJob.LANES, elementwise);
        } finally {
            elementwise.clear();
            dispatchLock.unlock();
        }
    }

    @Override
    public void softmax(float[] x, int off, int len) {
        VectorMath.softmax(x, off, len);
    }

    @Override
    public float dot(float[] a, int aOff, float[] b, int bOff, int len) {
        return VectorMath.dot(a, aOff, b, bOff, len);
    }

    @Override
    public void axpy(float a, float[] x, int xOff, float[] y, int yOff, int len) {
        VectorMath.axpy(a, x, xOff, y, yOff, len);
    }

    @Override
    public float dot(float[] q, int qOff, MemorySegment k, long kByteOff, int len) {
        return KvVectorMath.dotF32(q, qOff, k, kByteOff, len);
    }

    @Override
    public void axpy(float a, MemorySegment v, long vByteOff, float[] y, int yOff, int len) {
        KvVectorMath.axpyF32(a, v, vByteOff, y, yOff, len);
    }

    @Override
    public float dotF16(float[] q, int qOff, MemorySegment k, long kByteOff, int len) {
        return KvVectorMath.dotF16(q, qOff, k, kByteOff, len);
    }

    @Override
    public void axpyF16(float a, MemorySegment v, long vByteOff, float[] y, int yOff, int len) {
        KvVectorMath.axpyF16(a, v, vByteOff, y, yOff, len);
    }

    /** The pool matmuls run on (for benchmarks that compare against a plain parallel read). */
    WorkerPool pool() {
        return pool;
    }

    /** Worker threads still running (for tests: 0 after {@link #close()}). */
    int liveWorkers() {
        return pool.liveWorkers();
    }

    /** Stops and joins the worker threads; idempotent. Matmuls afterwards throw {@link IllegalStateException}. */
    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            pool.close();
        }
    }

    /**
     * The reusable description of one (possibly fused) matmul dispatch: up to three weights over
     * the same input, cut into row chunks of {@code chunkRows}; chunk {@code c} belongs to the
     * weight {@code m} with {@code firstChunk[m] <= c < firstChunk[m + 1]}.
     */
    private static final class MatmulJob implements WorkerPool.ChunkTask {
        final WeightMatrix[] weights = new WeightMatrix[3];
        final float[][] outs = new float[3][];
        final int[] firstChunk = new int[4];
        /** {@code x} packed once per dispatch when the batch is large enough for the prefill kernel. */
        final PackedActivations packed = new PackedActivations();
        boolean usePacked;
        int count;
        float[] x;
        int n;
        int cols;
        long totalRows;
        int chunkRows;
        int chunks;

        void set(float[] x, int n) {
            this.count = 0;
            this.usePacked = false;
            this.x = x;
            this.n = n;
            this.totalRows = 0;
            this.cols = -1;
        }

        void add(WeightMatrix w, float[] out) {
            weights[count] = w;
            outs[count] = out;
            cols = w.cols();
            totalRows += w.rows();
            count++;
        }

        void packIfLarge() {
            if (n >= PackedActivations.MIN_TOKENS) {
                packed.pack(x, n, cols);
                usePacked = true;
            }
        }

        void plan(int rowsPerChunk) {
            chunkRows = rowsPerChunk;
            int c = 0;
            for (int m = 0; m < count; m++) {
                firstChunk[m] = c;
                c += (weights[m].rows() + rowsPerChunk - 1) / rowsPerChunk;
            }
            firstChunk[count] = c;
            chunks = c;
        }

        void runSerial() {
            for (int m = 0; m < count; m++) {
                rows(weights[m], outs[m], 0, weights[m].rows());
            }
        }

        @Override
        public void run(int chunk) {
            int m = 0;
            while (chunk >= firstChunk[m + 1]) {
                m++;
            }
            WeightMatrix w = weights[m];
            int start = (chunk - firstChunk[m]) * chunkRows;
            rows(w, outs[m], start, Math.min(w.rows(), start + chunkRows));
        }

        private void rows(WeightMatrix w, float[] out, int rowStart, int rowEnd) {
            if (usePacked) {
                w.matmulRows(packed, out, rowStart, rowEnd);
            } else {
                w.matmulRows(x, n, out, rowStart, rowEnd);
            }
        }

        void clear() {
            for (int m = 0; m < 3; m++) {
                weights[m] = null;
                outs[m] = null;
            }
            x = null;
        }
    }

    /**
     * The reusable parallel form of {@link #rmsNorm} (ranges of tokens), {@link #swiglu} and
     * {@link #add} (ranges of {@link #LANES}-element groups: every range starts at a multiple of
     * the lane count, so each element takes the same vector or scalar path as in one serial call
     * and a split changes no result). Set and cleared under the dispatch lock.
     */
    private static final class ElementwiseJob implements RangeTask {
        enum Op { RMS_NORM, SWIGLU, ADD }

        static final int LANES = VectorMath.F.length();
        Op op;
        float[] a;
        float[] b;
        float[] out;
        int len;
        int dim;
        float eps;

        void set(Op op, float[] a, float[] b, float[] out, int len, int dim, float eps) {
            this.op = op;
            this.a = a;
            this.b = b;
            this.out = out;
            this.len = len;
            this.dim = dim;
            this.eps = eps;
        }

        @Override
        public void run(int from, int to, int slot) {
            switch (op) {
                case RMS_NORM -> {
                    for (int t = from; t < to; t++) {
                        VectorMath.rmsNorm(a, t * dim, b, out, t * dim, dim, eps);
                    }
                }
                case SWIGLU -> VectorMath.swiglu(a, b, from * LANES, Math.min(len, to * LANES));
                case ADD -> VectorMath.add(a, b, from * LANES, Math.min(len, to * LANES));
            }
        }

        void clear() {
            a = null;
            b = null;
            out = null;
        }
    }
}
