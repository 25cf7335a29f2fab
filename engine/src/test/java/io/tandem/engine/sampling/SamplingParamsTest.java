package io.tandem.engine.sampling;

import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.assertThat;

import io.tandem.engine.InvalidArgumentException;
import java.util.List;
import org.junit.jupiter.api.Test;

class SamplingParamsTest {

    @Test
    void shouldNameTheFieldOfEveryOutOfRangeValue() {
        assertParam(() -> new SamplingParams(-0.5f, 1f, -1, 4, null, List.of(), false), "temperature", "-0.5");
        assertParam(() -> new SamplingParams(Float.NaN, 1f, -1, 4, null, List.of(), false), "temperature", "NaN");
        assertParam(() -> new SamplingParams(1f, 0f, -1, 4, null, List.of(), false), "top_p", "0.0");
        assertParam(() -> new SamplingParams(1f, 1.5f, -1, 4, null, List.of(), false), "top_p", "1.5");
        assertParam(() -> new SamplingParams(1f, 1f, -2, 4, null, List.of(), false), "top_k", "-2");
        assertParam(() -> new SamplingParams(1f, 1f, -1, 0, null, List.of(), false), "max_tokens", "0");
        assertParam(() -> new SamplingParams(1f, 1f, -1, 4, null, List.of(""), false), "stop", "empty");
    }

    @Test
    void shouldTreatTopKZeroAsDisabled() {
        assertThat(new SamplingParams(1f, 1f, 0, 4, null, null, false).topK()).isEqualTo(SamplingParams.TOP_K_DISABLED);
    }

    private static void assertParam(Runnable r, String param, String valueText) {
        assertThatThrownBy(r::run).isInstanceOfSatisfying(InvalidArgumentException.class, e -> {
            assertThat(e.param()).isEqualTo(param);
            assertThat(e.getMessage()).contains(valueText);
        });
    }
}
