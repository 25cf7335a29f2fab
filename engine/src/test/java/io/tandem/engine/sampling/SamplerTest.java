package io.tandem.engine.sampling;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

class SamplerTest {
    private static final float[] LOGITS = {1.0f, 3.0f, 2.0f, 3.0f, -1.0f};

    private static SamplingParams params(float temperature, float topP, int topK) {
        return new SamplingParams(temperature, topP, topK, 16, 7L, List.of(), false);
    }

    @Test
    void shouldPickLowestIdAmongEqualMaximaWhenGreedy() {
        Sampler sampler = new Sampler(LOGITS.length);
        assertThat(sampler.sample(LOGITS, 0, SamplingParams.greedy(4), 0, 0)).isEqualTo(1);
    }

    @Test
    void shouldTreatTopKOneAsGreedy() {
        Sampler sampler = new Sampler(LOGITS.length);
        for (int step = 0; step < 50; step++) {
            assertThat(sampler.sample(LOGITS, 0, params(1.5f, 1f, 1), 99, step)).isEqualTo(1);
        }
    }

    @Test
    void shouldReadTheRowAtTheGivenOffset() {
        float[] twoRows = {9f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 9f};
        Sampler sampler = new Sampler(5);
        assertThat(sampler.sample(twoRows, 5, SamplingParams.greedy(1), 0, 0)).isEqualTo(4);
    }

    @Test
    void shouldOnlyDrawFromTheTopKTokens() {
        Sampler sampler = new Sampler(LOGITS.length);
        for (int step = 0; step < 500; step++) {
            assertThat(sampler.sample(LOGITS, 0, params(5f, 1f, 3), 3, step)).isIn(1, 2, 3);
        }
    }

    @Test
    void shouldOnlyDrawFromTheNucleus() {
        // At temperature 1 the probabilities are about 0.397, 0.397, 0.146, 0.054, 0.007 for ids 1, 3, 2,
        // 0, 4: the two largest hold 0.793, so top_p 0.75 keeps exactly {1, 3} (and 0.8 would add id 2).
        Sampler sampler = new Sampler(LOGITS.length);
        int[] counts = new int[LOGITS.length];
        for (int step = 0; step < 2000; step++) {
            counts[sampler.sample(LOGITS, 0, params(1f, 0.75f, -1), 11, step)]++;
        }
        assertThat(counts[0] + counts[2] + counts[4]).isZero();
        assertThat(counts[1]).isBetween(850, 1150);
        assertThat(counts[3]).isBetween(850, 1150);
    }

    @Test
    void shouldDrawInProportionToSoftmaxProbabilities() {
        float[] logits = {0f, (float) Math.log(3)}; // probabilities 1/4 and 3/4
        Sampler sampler = new Sampler(2);
        int ones = 0;
        int n = 8000;
        for (int step = 0; step < n; step++) {
            ones += sampler.sample(logits, 0, params(1f, 1f, -1), 5, step);
        }
        // 3/4 of 8000 = 6000, standard deviation sqrt(8000·3/16) ≈ 39: allow 5 sigma
        assertThat(ones).isBetween(5800, 6200);
    }

    @Test
    void shouldRepeatTheSameDrawsForTheSameSeedAndStep() {
        Sampler a = new Sampler(LOGITS.length);
        Sampler b = new Sampler(LOGITS.length);
        int differentSeedDiffers = 0;
        for (int step = 0; step < 200; step++) {
            int x = a.sample(LOGITS, 0, params(2f, 1f, -1), 1234, step);
            assertThat(b.sample(LOGITS, 0, params(2f, 1f, -1), 1234, step)).isEqualTo(x);
            if (b.sample(LOGITS, 0, params(2f, 1f, -1), 4321, step) != x) {
                differentSeedDiffers++;
            }
        }
        assertThat(differentSeedDiffers).isGreaterThan(50);
    }

    @Test
    void shouldNotModifyTheLogits() {
        float[] copy = LOGITS.clone();
        new Sampler(LOGITS.length).sample(copy, 0, params(0.7f, 0.9f, 4), 1, 0);
        assertThat(copy).containsExactly(LOGITS);
    }

    @Test
    void shouldPickTheArgmaxWhenTheTemperatureIsSoSmallThatItsInverseOverflows() {
        // 1 / 1e-40 is +Infinity in float: scaling the max logit's 0 by it gives NaN, not 1.
        float[] logits = {1f, 2f, 5f, 3f};
        Sampler sampler = new Sampler(logits.length);
        for (float temperature : new float[] {1e-40f, Float.MIN_VALUE}) {
            for (float topP : new float[] {1f, 0.5f}) {
                assertThat(sampler.sample(logits, 0, params(temperature, topP, -1), 7, 0))
                        .as("temperature %s, top_p %s", temperature, topP).isEqualTo(2);
            }
        }
    }
}
