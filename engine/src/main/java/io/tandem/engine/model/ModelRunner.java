package io.tandem.engine.model;

import io.tandem.engine.backend.Backend;
import io.tandem.kvcache.BlockTable;
import io.tandem.kvcache.KvCacheSpec;
import io.tandem.kvcache.KvCacheStorage;
import io.tandem.kvcache.KvDtype;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The Llama forward pass over a {@link ForwardBatch}, reading and writing K/V only through the
 * batch's block tables into a paged {@link KvCacheStorage}.
 *
 * <p>Per layer: RMSNorm → Q,K,V projections (+bias) → RoPE → K/V written to their pages →
 * causal grouped-query attention over the pages → output projection + residual → RMSNorm →
 * SwiGLU feed-forward + residual (Touvron et al. 2023, "Llama 2", §2; GQA: Ainslie et al. 2023).
 * Finally RMSNorm and the output projection for the last token of each sequence that wants logits.
 *
 * <p>All scratch memory is allocated here for {@code maxBatchTokens} tokens; {@link #forward}
 * allocates nothing. Not thread-safe: one engine thread owns a runner.
 */
public final class ModelRunner {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;

    private final ModelConfig config;
    private final LlamaWeights weights;
    private final Backend backend;
    private final KvCacheStorage kv;
    private final KvCacheSpec spec;
    private final float attentionScale;
    /** Whether the KV cache holds binary16 (converted on write, widened on read) instead of f32. */
    private final boolean kvF16;

    private final float[] x;      // [T, dim] residual stream
    private final float[] xb;     // [T, dim] normalized input
    private final float[] q;      // [T, qDim]
    private final float[] k;      // [T, kvDim]
    private final float[] v;      // [T, kvDim]
    private final float[] att;    // [T, qDim] attention output
    private final float[] proj;   // [T, dim] projection output
    private final float[] gate;   // [T, hiddenDim]
    private final float[] up;     // [T, hiddenDim]
    private final float[] last;   // [S, dim] final hidden state of sequences that want logits
    private final float[] logits; // [S, vocab]
    private final float[][] scores; // per parallel slot: [heads per KV head, contextLength]
    private final int[] logitRows;  // batch sequence index -> row in logits, or -1

    /**
     * @param maxBatchTokens tokens per forward pass at most
     * @param maxSeqs        sequences per forward pass at most
     * @throws IllegalArgumentException if the KV geometry does not match the model
     */
    public ModelRunner(LlamaModel model, Backend backend, KvCacheStorage kv, int maxBatchTokens, int maxSeqs) {
        this.config = model.config();
        this.weights = model.weights();
        this.backend = backend;
        this.kv = kv;
        this.spec = kv.spec();
        if (spec.numLayers() != config.numLayers() || spec.numKvHeads() != config.numKvHeads()
                || spec.headDim() != config.headDim()) {
            throw new IllegalArgumentException("KV cache geometry " + spec + " does not match model " + config);
        }
        this.kvF16 = spec.dtype() == KvDtype.F16;
        this.attentionScale = (float) (1.0 / Math.sqrt(config.headDim()));
        int t = maxBatchTokens;
        x = new float[t * config.dim()];
        xb = new float[t * config.dim()];
        q = new float[t * config.qDim()];
        k = new float[t * config.kvDim()];
        v = new float[t * config.kvDim()];
        att = new float[t * config.qDim()];
        proj = new float[t * config.dim()];
        gate = new float[t * config.hiddenDim()];
        up = new float[t * config.hiddenDim()];
        last = new float[maxSeqs * config.dim()];
        logits = new float[maxSeqs * config.vocabSize()];
        logitRows = new int[maxSeqs];
        scores = new float[backend.parallelSlots()][config.numHeads() / config.numKvHeads() * config.contextLength()];
    }

    public ModelConfig config() {
        return config;
    }

    public KvCacheStorage kvCache() {
        return kv;
    }

    /**
     * Told on the engine thread, during {@link #forward}, each time a layer's K/V for every token of
     * the batch have been written into their pages (before that layer's attention reads them): from
     * then on this pass writes nothing more into that layer's pages. A prefill publishes its layer
     * progress here so that finished pages can be sent while later layers compute.
     */
    @FunctionalInterface
    public interface KvWriteListener {
        void onLayerWritten(int layer);
    }

    /**
     * Runs the batch and returns the logits buffer, {@code [S, vocab]}, where row {@link #logitRow}
     * belongs to a sequence that asked for logits. The buffer is reused by the next call.
     */
    public float[] forward(ForwardBatch batch) {
        return forward(batch, null);
    }

    /**
     * {@link #forward(ForwardBatch)}, telling {@code listener} (if not null) as each layer's K/V are written.
     */
    public float[] forward(ForwardBatch batch, KvWriteListener listener) {
        int n = batch.numTokens;
        int dim = config.dim();
        for (int t = 0; t < n; t++) {
            weights.tokenEmbedding().dequantizeRow(batch.tokens[t], x, t * dim);
        }
        for (int l = 0; l < config.numLayers(); l++) {
            attentionBlock(batch, l, weights.layers()[l], listener);
            feedForwardBlock(n, weights.layers()[l]);
        }
        int rows = 0;
        for (int s = 0; s < batch.numSeqs; s++) {
            if (batch.wantsLogits[s]) {
                int lastToken = batch.seqStart[s + 1] - 1;
                System.arraycopy(x, lastToken * dim, last, rows * dim, dim);
                logitRows[s] = rows++;
            } else {
                logitRows[s] = -1;
            }
        }
        if (rows > 0) {
            backend.rmsNorm(last, weights.outputNorm(), last, rows, dim, config.rmsNormEps());
            backend.matmul(weights.output(), last, logits, rows);
        }
        return logits;
    }

    /** Row of the logits that belongs to batch sequence {@code seqIndex}, or -1 if it wanted none. */
    public int logitRow(int seqIndex) {
        return logitRows[seqIndex];
    }

    private void attentionBlock(ForwardBatch batch, int layer, LayerWeights w, KvWriteListener listener) {
        int n = batch.numTokens;
        backend.rmsNorm(x, w.attnNorm(), xb, n, config.dim(), config.rmsNormEps());
        backend.matmul3(w.wq(), w.wk(), w.wv(), xb, q, k, v, n);
        if (w.bq() != null) {
            addBias(q, w.bq(), n);
            addBias(k, w.bk(), n);
            addBias(v, w.bv(), n);
        }
        backend.rope(q, n, config.numHeads(), config.headDim(), config.rotaryDim(), batch.positions,
                config.ropeStyle(), config.ropeTheta());
        backend.rope(k, n, config.numKvHeads(), config.headDim(), config.rotaryDim(), batch.positions,
                config.ropeStyle(), config.ropeTheta());
        writeKv(batch, layer);
        if (listener != null) {
            listener.onLayerWritten(layer);
        }
        MemorySegment pages = kv.layer(layer);
        int numKvHeads = config.numKvHeads();
        backend.parallelFor(n * numKvHeads, (from, to, thread) -> {
            for (int i = from; i < to; i++) {
                attendGroup(batch, pages, i / numKvHeads, i % numKvHeads, scores[thread]);
            }
        });
        backend.matmul(w.wo(), att, proj, n);
        backend.add(x, proj, n * config.dim());
    }

    private void feedForwardBlock(int n, LayerWeights w) {
        backend.rmsNorm(x, w.ffnNorm(), xb, n, config.dim(), config.rmsNormEps());
        backend.matmul2(w.wGate(), w.wUp(), xb, gate, up, n);
        backend.swiglu(gate, up, n * config.hiddenDim());
        backend.matmul(w.wDown(), gate, proj, n);
        backend.add(x, proj, n * config.dim());
    }

    private void addBias(float[] out, float[] bias, int n) {
        for (int t = 0; t < n; t++) {
            for (int i = 0; i < bias.length; i++) {
                out[t * bias.length + i] += bias[i];
            }
        }
    }

    /** Writes the batch's new K and V vectors into their pages (slot = position). */
    private void writeKv(ForwardBatch batch, int layer) {
        MemorySegment pages = kv.layer(layer);
        int headDim = config.headDim();
        int blockSize = spec.blockSize();
        for (int s = 0; s < batch.numSeqs; s++) {
            BlockTable table = batch.blockTables[s];
            for (int t = batch.seqStart[s]; t < batch.seqStart[s + 1]; t++) {
                int pos = batch.positions[t];
                long page = kv.pageOffset(table.blockId(pos / blockSize));
                int slot = pos % blockSize;
                for (int h = 0; h < config.numKvHeads(); h++) {
                    int src = t * config.kvDim() + h * headDim;
                    storeKv(k, src, pages, page + spec.keyOffsetInPage(h, slot), headDim);
                    storeKv(v, src, pages, page + spec.valueOffsetInPage(h, slot), headDim);
                }
            }
        }
    }

    /** Writes {@code len} floats of {@code src} at byte {@code offset} of the pages, in the KV dtype. */
    private void storeKv(float[] src, int from, MemorySegment pages, long offset, int len) {
        if (!kvF16) {
            MemorySegment.copy(src, from, pages, F32, offset, len);
            return;
        }
        for (int i = 0; i < len; i++) {
            pages.set(ValueLayout.JAVA_SHORT_UNALIGNED, offset + 2L * i, Float.floatToFloat16(src[from + i]));
        }
    }

    /**
     * Causal attention of token {@code t}'s query heads that share KV head {@code kvHead} (one
     * GQA group) over positions {@code [0, pos]} of its sequence, reading K/V block by block
     * through the block table: each key and value row is fetched once for the whole group. Per
     * head the arithmetic and its order are those of one head at a time (scores by ascending
     * position, then the weighted sum of values by ascending position).
     *
     * @param sc scratch {@code [group, contextLength]}
     */
    private void attendGroup(ForwardBatch batch, MemorySegment pages, int t, int kvHead, float[] sc) {
        BlockTable table = batch.blockTables[sequenceOf(batch, t)];
        int pos = batch.positions[t];
        int headDim = config.headDim();
        int group = config.numHeads() / config.numKvHeads();
        int ctx = config.contextLength();
        int qBase = t * config.qDim() + kvHead * group * headDim;
        int blockSize = spec.blockSize();
        for (int j0 = 0; j0 <= pos; j0 += blockSize) {
            long page = kv.pageOffset(table.blockId(j0 / blockSize));
            int end = Math.min(pos + 1, j0 + blockSize);
            for (int j = j0; j < end; j++) {
                long key = page + spec.keyOffsetInPage(kvHead, j - j0);
                for (int g = 0; g < group; g++) {
                    int qOff = qBase + g * headDim;
                    sc[g * ctx + j] = (kvF16 ? backend.dotF16(q, qOff, pages, key, headDim)
                            : backend.dot(q, qOff, pages, key, headDim)) * attentionScale;
                }
            }
        }
        for (int g = 0; g < group; g++) {
            backend.softmax(sc, g * ctx, pos + 1);
        }
        java.util.Arrays.fill(att, qBase, qBase + group * headDim, 0f);
        for (int j0 = 0; j0 <= pos; j0 += blockSize) {
            long page = kv.pageOffset(table.blockId(j0 / blockSize));
            int end = Math.min(pos + 1, j0 + blockSize);
            for (int j = j0; j < end; j++) {
                long value = page + spec.valueOffsetInPage(kvHead, j - j0);
                for (int g = 0; g < group; g++) {
                    if (kvF16) {
                        backend.axpyF16(sc[g * ctx + j], pages, value, att, qBase + g * headDim, headDim);
                    } else {
                        backend.axpy(sc[g * ctx + j], pages, value, att, qBase + g * headDim, headDim);
                    }
                }
            }
        }
    }

    private static int sequenceOf(ForwardBatch batch, int t) {
        // Sequences are few; a linear scan beats a per-token lookup table we would have to fill.
        int s = 0;
        while (batch.seqStart[s + 1] <= t) {
            s++;
        }
        return s;
    }
}
