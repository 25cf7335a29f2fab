package io.tandem.engine.backend;

import java.util.Objects;

/**
 * RoPE with ggml's angle arithmetic ({@code ggml_rope_cache_init} and {@code rope_yarn} in
 * ggml-cpu, without YaRN: {@code ext_factor = 0}, {@code freq_scale = 1}, {@code attn_factor = 1}):
 * <pre>
 *   theta_scale = powf(freq_base, -2.0f / n_dims)
 *   theta       = (float) pos;  for each pair i: angle_i = theta / ff_i;  theta *= theta_scale
 *   cos_i = cosf(angle_i), sin_i = sinf(angle_i)
 *   x0' = x0 * cos_i - x1 * sin_i,   x1' = x0 * sin_i + x1 * cos_i
 * </pre>
 * All in float, so {@code theta} accumulates the same rounding as llama.cpp. The cos/sin of a
 * token's position are computed once per call into a per-thread scratch and applied to every
 * head; a table over all positions would cost {@code 4 * rotaryDim} bytes per position of
 * context and save about 2 microseconds per token per call.
 */
final class RotaryEmbedding {
    private static final ThreadLocal<float[]> SCRATCH = ThreadLocal.withInitial(() -> new float[0]);

    private RotaryEmbedding() {
    }

    static void apply(float[] x, int n, int numHeads, int headDim, int rotaryDim, int[] positions,
                      RopeStyle style, float freqBase, float[] freqFactors) {
        if (rotaryDim <= 0 || rotaryDim % 2 != 0 || rotaryDim > headDim) {
            throw new IllegalArgumentException("rotaryDim must be even and in (0, headDim=" + headDim
                    + "], got " + rotaryDim);
        }
        int half = rotaryDim / 2;
        if (freqFactors != null && freqFactors.length < half) {
            throw new IllegalArgumentException("freqFactors needs rotaryDim/2 = " + half
                    + " entries, has " + freqFactors.length);
        }
        Objects.checkFromIndexSize(0, n, positions.length);
        Objects.checkFromIndexSize(0, (long) n * numHeads * headDim, x.length);
        float[] cs = scratch(rotaryDim);
        float thetaScale = (float) Math.pow(freqBase, -2.0f / rotaryDim);
        for (int t = 0; t < n; t++) {
            angles(positions[t], half, thetaScale, freqFactors, cs);
            int row = t * numHeads * headDim;
            for (int h = 0; h < numHeads; h++) {
                int head = row + h * headDim;
                switch (style) {
                    case NORMAL -> rotateAdjacent(x, head, half, cs);
                    case NEOX -> rotateHalves(x, head, half, cs);
                }
            }
        }
    }

    /** {@code cs[2i] = cos_i}, {@code cs[2i+1] = sin_i} for position {@code pos}. */
    private static void angles(int pos, int half, float thetaScale, float[] freqFactors, float[] cs) {
        float theta = pos;
        for (int i = 0; i < half; i++) {
            float angle = freqFactors == null ? theta : theta / freqFactors[i];
            cs[2 * i] = (float) Math.cos(angle);
            cs[2 * i + 1] = (float) Math.sin(angle);
            theta *= thetaScale;
        }
    }

    private static void rotateAdjacent(float[] x, int head, int half, float[] cs) {
        for (int i = 0; i < half; i++) {
            float c = cs[2 * i];
            float s = cs[2 * i + 1];
            float x0 = x[head + 2 * i];
            float x1 = x[head + 2 * i + 1];
            x[head + 2 * i] = x0 * c - x1 * s;
            x[head + 2 * i + 1] = x0 * s + x1 * c;
        }
    }

    private static void rotateHalves(float[] x, int head, int half, float[] cs) {
        for (int i = 0; i < half; i++) {
            float c = cs[2 * i];
            float s = cs[2 * i + 1];
            float x0 = x[head + i];
            float x1 = x[head + i + half];
            x[head + i] = x0 * c - x1 * s;
            x[head + i + half] = x0 * s + x1 * c;
        }
    }

    private static float[] scratch(int size) {
        float[] s = SCRATCH.get();
        if (s.length < size) {
            s = new float[size];
            SCRATCH.set(s);
        }
        return s;
    }
}
