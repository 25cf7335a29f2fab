package io.tandem.router.discovery;

import static org.assertj.core.api.Assertions.assertThat;

import io.tandem.control.HostPort;
import java.util.Set;
import org.junit.jupiter.api.Test;

class PoolDiffTest {
    private static final HostPort A = new HostPort("10.0.0.1", 50061);
    private static final HostPort B = new HostPort("10.0.0.2", 50061);
    private static final HostPort C = new HostPort("10.0.0.3", 50061);
    private static final HostPort STATIC = new HostPort("10.0.0.9", 50061);

    @Test
    void shouldProbeEndpointsFoundButNotKnownAndRemoveThoseKnownButNotFound() {
        PoolDiff diff = PoolDiff.between(Set.of(A, B), Set.of(B, C), Set.of());

        assertThat(diff.joined()).containsExactly(C);
        assertThat(diff.left()).containsExactly(A);
        assertThat(diff.isEmpty()).isFalse();
    }

    @Test
    void shouldChangeNothingWhenDnsListsWhatIsKnown() {
        assertThat(PoolDiff.between(Set.of(A, B), Set.of(B, A), Set.of()).isEmpty()).isTrue();
    }

    @Test
    void shouldNeverProbeAStaticWorkerListedInDnsToo() {
        PoolDiff diff = PoolDiff.between(Set.of(), Set.of(A, STATIC), Set.of(STATIC));

        assertThat(diff.joined()).containsExactly(A);
        assertThat(diff.left()).isEmpty();
    }

    @Test
    void shouldTellTheSamePortOnAnotherAddressApart() {
        PoolDiff diff = PoolDiff.between(Set.of(A), Set.of(new HostPort("10.0.0.1", 50071)), Set.of());

        assertThat(diff.joined()).containsExactly(new HostPort("10.0.0.1", 50071));
        assertThat(diff.left()).containsExactly(A);
    }

    @Test
    void shouldRemoveEveryWorkerWhenTheNameListsNone() {
        PoolDiff diff = PoolDiff.between(Set.of(A, B), Set.of(), Set.of());

        assertThat(diff.joined()).isEmpty();
        assertThat(diff.left()).containsExactlyInAnyOrder(A, B);
    }
}
