package io.tandem.router.discovery;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

class DiscoveryTargetTest {
    private static final List<Integer> DEFAULTS = List.of(50061, 50071);

    @Test
    void shouldParseANameWithAPort() {
        DiscoveryTarget t = DiscoveryTarget.parse("dns:tandem-workers.default.svc.cluster.local:50061", DEFAULTS);

        assertThat(t.name()).isEqualTo("tandem-workers.default.svc.cluster.local");
        assertThat(t.ports()).containsExactly(50061);
        assertThat(t).hasToString("dns:tandem-workers.default.svc.cluster.local:50061");
    }

    @Test
    void shouldProbeBothDefaultPortsOfANameWithoutAPort() {
        DiscoveryTarget t = DiscoveryTarget.parse("dns:workers", DEFAULTS);

        assertThat(t.name()).isEqualTo("workers");
        assertThat(t.ports()).containsExactly(50061, 50071);
        assertThat(t).hasToString("dns:workers");
    }

    @Test
    void shouldParseACommaSeparatedList() {
        assertThat(DiscoveryTarget.parseList("dns:prefill:1, dns:decode:2", DEFAULTS)).containsExactly(
                new DiscoveryTarget("prefill", List.of(1)), new DiscoveryTarget("decode", List.of(2)));
    }

    @ParameterizedTest
    @ValueSource(strings = {"workers", "srv:workers", "dns:", "dns::50061", "dns:workers:", "dns:workers:0",
            "dns:workers:65536", "dns:workers:http", "dns:work ers", "dns:-workers", "dns:workers..svc",
            "dns:workers:1:2", "DNS:workers"})
    void shouldRejectWhatIsNotDnsNamePortQuotingIt(String text) {
        assertThatThrownBy(() -> DiscoveryTarget.parse(text, DEFAULTS))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("'" + text + "' is not dns:NAME[:PORT]");
    }

    @Test
    void shouldSayWhichPartIsWrong() {
        assertThatThrownBy(() -> DiscoveryTarget.parse("dns:workers:70000", DEFAULTS))
                .hasMessage("'dns:workers:70000' is not dns:NAME[:PORT]: port 70000 of workers is not in [1, 65535]");
        assertThatThrownBy(() -> DiscoveryTarget.parse("dns:a_b c", DEFAULTS))
                .hasMessage("'dns:a_b c' is not dns:NAME[:PORT]: 'a_b c' is not a DNS name");
    }
}
