package io.tandem.engine.backend;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * Element-wise and reduction kernels on heap {@code float[]} activations, written with the Vector
 * API as flat loops (no vector crosses a method boundary) plus a scalar tail.
 */
final class VectorMath {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int LANES = F.length();
    private static final VectorSpecies<Double> D =
            VectorSpecies.of(double.class, VectorShape.forBitSize(F.vectorBitSize()));
    /** Double vectors needed to hold one float vector's lanes. */
    private static final int D_PARTS = LANES / D.length();

    private VectorMath() {
    }

    /**
     * RMSNorm of one token as ggml: squares in float, summed in double ({@code ggml_float}),
     * {@code mean = (float) (sum / dim)}, {@code scale = 1.0f / sqrtf(mean + eps)}, then
     * {@code out = (x * scale) * weight} with both products rounded to float.
     */
    static void rmsNorm(float[] x, int xOff, float[] weight, float[] out, int outOff, int dim, float eps) {
        DoubleVector acc = DoubleVector.zero(D);
        int i = 0;
        for (int bound = F.loopBound(dim); i < bound; i += LANES) {
            FloatVector v = FloatVector.fromArray(F, x, xOff + i);
            FloatVector sq = v.mul(v);
            for (int p = 0; p < D_PARTS; p++) {
                acc = acc.add((DoubleVector) sq.convertShape(VectorOperators.F2D, D, p));
            }
        }
        double sum = acc.reduceLanes(VectorOperators.ADD);
        for (; i < dim; i++) {
            float v = x[xOff + i];
            sum += v * v;
        }
        float mean = (float) (sum / dim);
        float scale = 1.0f / (float) Math.sqrt(mean + eps);
        FloatVector s = FloatVector.broadcast(F, scale);
        i = 0;
        for (int bound = F.loopBound(dim); i < bound; i += LANES) {
            FloatVector.fromArray(F, x, xOff + i).mul(s).mul(FloatVector.fromArray(F, weight, i))
                    .intoArray(out, outOff + i);
        }
        for (; i < dim; i++) {
            out[outOff + i] = (x[xOff + i] * scale) * weight[i];
        }
    }

    /** {@code gate[i] = gate[i] / (1 + exp(-gate[i])) * up[i]}. */
    static void swiglu(float[] gate, float[] up, int len) {
        swiglu(gate, up, 0, len);
    }

    /**
     * {@link #swiglu(float[], float[], int)} over {@code [from, to)}; with {@code from} a multiple
     * of the lane count every element takes the same (vector or scalar) path as in one call over
     * the whole array, so a split changes no result.
     */
    static void swiglu(float[] gate, float[] up, int from, int to) {
        FloatVector one = FloatVector.broadcast(F, 1f);
        int i = from;
        for (int bound = from + F.loopBound(to - from); i < bound; i += LANES) {
            FloatVector g = FloatVector.fromArray(F, gate, i);
            FloatVector e = g.neg().lanewise(VectorOperators.EXP);
            g.div(one.add(e)).mul(FloatVector.fromArray(F, up, i)).intoArray(gate, i);
        }
        for (; i < to; i++) {
            float g = gate[i];
            gate[i] = g / (1f + (float) Math.exp(-g)) * up[i];
        }
    }

    static void add(float[] acc, float[] x, int len) {
        add(acc, x, 0, len);
    }

    static void add(float[] acc, float[] x, int from, int to) {
        int i = from;
        for (int bound = from + F.loopBound(to - from); i < bound; i += LANES) {
            FloatVector.fromArray(F, acc, i).add(FloatVector.fromArray(F, x, i)).intoArray(acc, i);
        }
        for (; i < to; i++) {
            acc[i] += x[i];
        }
    }

    /** Max-subtracted softmax in place; the sum of exponentials is accumulated in float lanes. */
    static void softmax(float[] x, int off, int len) {
        if (len <= 0) {
            return;
        }
        int i = 0;
        FloatVector maxV = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
        for (int bound = F.loopBound(len); i < bound; i += LANES) {
            maxV = maxV.max(FloatVector.fromArray(F, x, off + i));
        }
        float max = maxV.reduceLanes(VectorOperators.MAX);
        for (; i < len; i++) {
            max = Math.max(max, x[off + i]);
        }
        FloatVector m = FloatVector.broadcast(F, max);
        FloatVector sumV = FloatVector.zero(F);
        i = 0;
        for (int bound = F.loopBound(len); i < bound; i += LANES) {
            FloatVector e = FloatVector.fromArray(F, x, off + i).sub(m).lanewise(VectorOperators.EXP);
            e.intoArray(x, off + i);
            sumV = sumV.add(e);
        }
        float sum = sumV.reduceLanes(VectorOperators.ADD);
        for (; i < len; i++) {
            float e = (float) Math.exp(x[off + i] - max);
            x[off + i] = e;
            sum += e;
        }
        float inv = 1f / sum;
        FloatVector s = FloatVector.broadcast(F, inv);
        i = 0;
        for (int bound = F.loopBound(len); i < bound; i += LANES) {
            FloatVector.fromArray(F, x, off + i).mul(s).intoArray(x, off + i);
        }
        for (; i < len; i++) {
            x[off + i] *= inv;
        }
    }

    static float dot(float[] a, int aOff, float[] b, int bOff, int len) {
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        int i = 0;
        for (int pairs = len - len % (2 * LANES); i < pairs; i += 2 * LANES) {
            acc0 = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), acc0);
            acc1 = FloatVector.fromArray(F, a, aOff + i + LANES)
                    .fma(FloatVector.fromArray(F, b, bOff + i + LANES), acc1);
        }
        for (int bound = F.loopBound(len); i < bound; i += LANES) {
            acc0 = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), acc0);
        }
        float s = acc0.add(acc1).reduceLanes(VectorOperators.ADD);
        for (; i < len; i++) {
            s += a[aOff + i] * b[bOff + i];
        }
        return s;
    }

    static void axpy(float a, float[] x, int xOff, float[] y, int yOff, int len) {
        FloatVector av = FloatVector.broadcast(F, a);
        int i = 0;
        for (int bound = F.loopBound(len); i < bound; i += LANES) {
            FloatVector.fromArray(F, x, xOff + i).fma(av, FloatVector.fromArray(F, y, yOff + i))
                    .intoArray(y, yOff + i);
        }
        for (; i < len; i++) {
            y[yOff + i] += a * x[xOff + i];
        }
    }
}
