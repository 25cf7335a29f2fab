package io.tandem.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import org.junit.jupiter.api.Test;

class GoodputSloTest {

    @Test
    void shouldParseEachObjectiveAndLeaveTheOthersUnbounded() {
        GoodputSlo slo = GoodputSlo.parse(List.of("ttft:500", "e2el:2500.5"));

        assertThat(slo).isEqualTo(new GoodputSlo(500, Double.POSITIVE_INFINITY, 2500.5));
        assertThat(slo.isSet()).isTrue();
        assertThat(GoodputSlo.parse(List.of()).isSet()).isFalse();
    }

    @Test
    void shouldRejectUnknownRepeatedOrNegativeObjectivesNamingThem() {
        assertThatThrownBy(() -> GoodputSlo.parse(List.of("itl:5"))).hasMessageContaining("'itl:5' has an unknown key");
        assertThatThrownBy(() -> GoodputSlo.parse(List.of("ttft:5", "ttft:6"))).hasMessageContaining("'ttft' is given twice");
        assertThatThrownBy(() -> GoodputSlo.parse(List.of("tpot:-1"))).hasMessageContaining("'tpot:-1' must be a finite number >= 0");
        assertThatThrownBy(() -> GoodputSlo.parse(List.of("tpot"))).hasMessageContaining("KEY:MS");
        assertThatThrownBy(() -> GoodputSlo.parse(List.of("tpot:fast"))).hasMessageContaining("number of milliseconds");
    }

    @Test
    void shouldJudgeARequestAgainstEveryObjective() {
        // TTFT 100 ms, E2EL 400 ms, 4 tokens: TPOT 100 ms.
        RequestResult.Success request = new RequestResult.Success(1, 4, 100_000_000, 400_000_000, new long[0]);

        assertThat(new GoodputSlo(100, 100, 400).isMetBy(request)).isTrue();
        assertThat(new GoodputSlo(99.9, 100, 400).isMetBy(request)).isFalse();
        assertThat(new GoodputSlo(100, 99.9, 400).isMetBy(request)).isFalse();
        assertThat(new GoodputSlo(100, 100, 399.9).isMetBy(request)).isFalse();
    }
}
