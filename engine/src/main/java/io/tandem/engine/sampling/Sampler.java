package io.tandem.engine.sampling;

import java.util.Arrays;

/**
 * Picks the next token from a row of logits: greedy (argmax, lowest id on ties), or temperature →
 * top-k → top-p (nucleus, Holtzman et al. 2020) → a draw from the renormalised distribution.
 *
 * <p>Randomness is counter-based: the draw for generation step {@code step} of a request with
 * seed {@code seed} is a pure function of the two, so a request continued on another worker (the
 * prefill→decode hand-off) samples exactly as if it had stayed on one. Scratch buffers are
 * allocated once for the vocabulary; {@link #sample} allocates nothing except when top-p keeps a
 * large candidate set. One sampler per engine thread.
 */
public final class Sampler {
    private final int vocabSize;
    private final float[] probs;
    private final long[] candidates;

    public Sampler(int vocabSize) {
        this.vocabSize = vocabSize;
        this.probs = new float[vocabSize];
        this.candidates = new long[vocabSize];
    }

    /**
     * @param logits logits buffer; the row is {@code [offset, offset + vocabSize)}, left unchanged
     * @param step   index of the token being generated (0 = first token after the prompt)
     * @return the chosen token id
     */
    public int sample(float[] logits, int offset, SamplingParams params, long seed, int step) {
        float invT = 1f / params.temperature();
        // Below ~3e-39, 1/T overflows to +Infinity and the max logit's (0 · Inf) would be NaN; the
        // distribution's limit there is the argmax anyway.
        if (params.isGreedy() || Float.isInfinite(invT)) {
            return argmax(logits, offset, vocabSize);
        }
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < vocabSize; i++) {
            max = Math.max(max, logits[offset + i]);
        }
        int n = 0;
        float kthLogit = params.topK() > 0 && params.topK() < vocabSize
                ? kthLargest(logits, offset, params.topK()) : Float.NEGATIVE_INFINITY;
        double sum = 0;
        for (int i = 0; i < vocabSize; i++) {
            float l = logits[offset + i];
            if (l >= kthLogit) {
                float p = (float) Math.exp((l - max) * invT);
                probs[i] = p;
                sum += p;
                n++;
            } else {
                probs[i] = 0f;
            }
        }
        double u = uniform(seed, step);
        if (params.topP() >= 1f) {
            double target = u * sum;
            double acc = 0;
            int lastNonZero = 0;
            for (int i = 0; i < vocabSize; i++) {
                if (probs[i] > 0f) {
                    acc += probs[i];
                    lastNonZero = i;
                    if (acc > target) {
                        return i;
                    }
                }
            }
            return lastNonZero;
        }
        return sampleTopP(params.topP(), sum, u);
    }

    private int sampleTopP(float topP, double sum, double u) {
        // Sort candidates by probability, descending; ties broken by lower id first. Packing
        // (prob bits, ~id) in a long keeps the sort primitive (probabilities are >= 0, so their
        // float bits order like the floats).
        int n = 0;
        for (int i = 0; i < vocabSize; i++) {
            if (probs[i] > 0f) {
                candidates[n++] = ((long) Float.floatToRawIntBits(probs[i]) << 32) | (~i & 0xFFFFFFFFL);
            }
        }
        Arrays.sort(candidates, 0, n);
        double mass = topP * sum;
        double acc = 0;
        int keep = 0;
        for (int c = n - 1; c >= 0; c--) {
            acc += Float.intBitsToFloat((int) (candidates[c] >>> 32));
            keep++;
            if (acc >= mass) {
                break;
            }
        }
        double target = u * acc;
        double run = 0;
        for (int c = n - 1; c >= n - keep; c--) {
            run += Float.intBitsToFloat((int) (candidates[c] >>> 32));
            if (run > target) {
                return ~(int) candidates[c];
            }
        }
        return ~(int) candidates[n - keep];
    }

    /** Index of the largest value in {@code x[offset, offset+len)}; the lowest index on ties. */
    public static int argmax(float[] x, int offset, int len) {
        int best = 0;
        float bestValue = x[offset];
        for (int i = 1; i < len; i++) {
            if (x[offset + i] > bestValue) {
                bestValue = x[offset + i];
                best = i;
            }
        }
        return best;
    }

    private float kthLargest(float[] logits, int offset, int k) {
        // Min-heap of the k largest logits, kept in the probs scratch array.
        float[] heap = probs;
        int size = 0;
        for (int i = 0; i < vocabSize; i++) {
            float v = logits[offset + i];
            if (size < k) {
                int c = size++;
                heap[c] = v;
                while (c > 0 && heap[(c - 1) / 2] > heap[c]) {
                    swap(heap, c, (c - 1) / 2);
                    c = (c - 1) / 2;
                }
            } else if (v > heap[0]) {
                heap[0] = v;
                int c = 0;
                while (true) {
                    int l = 2 * c + 1, r = l + 1, m = c;
                    if (l < size && heap[l] < heap[m]) m = l;
                    if (r < size && heap[r] < heap[m]) m = r;
                    if (m == c) break;
                    swap(heap, c, m);
                    c = m;
                }
            }
        }
        return heap[0];
    }

    private static void swap(float[] a, int i, int j) {
        float t = a[i];
        a[i] = a[j];
        a[j] = t;
    }

    /** A uniform double in [0, 1) from (seed, step): SplitMix64 (Steele et al. 2014) of their mix. */
    static double uniform(long seed, int step) {
        long z = seed + 0x9E3779B97F4A7C15L * (step + 1L);
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        z = z ^ (z >>> 31);
        return (z >>> 11) * 0x1.0p-53;
    }
}
