package io.tandem.engine.backend;

import static org.assertj.core.api.Assertions.assertThat;

import io.tandem.engine.tensor.GgmlType;
import io.tandem.engine.tensor.Quantizer;
import io.tandem.engine.tensor.WeightMatrix;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** {@link CpuBackend#parallelFor} and two engine threads sharing one backend. */
@Timeout(60)
class CpuBackendSharingTest {

    @Test
    void shouldCoverEveryIndexExactlyOnceWithSlotsBelowTheLimit() {
        try (CpuBackend backend = new CpuBackend(3)) {
            for (int count : new int[] {1, 2, 7, 12, 13, 1000}) {
                AtomicIntegerArray hits = new AtomicIntegerArray(count);
                AtomicIntegerArray slotUsed = new AtomicIntegerArray(backend.parallelSlots());
                backend.parallelFor(count, (from, to, slot) -> {
                    assertThat(slot).isBetween(0, backend.parallelSlots() - 1);
                    assertThat(slotUsed.getAndIncrement(slot)).as("slot %d used twice", slot).isZero();
                    for (int i = from; i < to; i++) {
                        hits.incrementAndGet(i);
                    }
                });
                for (int i = 0; i < count; i++) {
                    assertThat(hits.get(i)).as("index %d of %d", i, count).isEqualTo(1);
                }
            }
        }
    }

    @Test
    void shouldServeTwoEngineThreadsAtOnceWithCorrectResults() throws Exception {
        int rows = 512;
        int cols = 1024;
        SplittableRandom rnd = new SplittableRandom(3);
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) rnd.nextGaussian();
        }
        WeightMatrix m = WeightMatrix.of(GgmlType.Q8_0, MemorySegment.ofArray(Quantizer.quantize(GgmlType.Q8_0, w)), rows, cols);
        float[] x = new float[cols];
        for (int i = 0; i < cols; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        float[] expected = new float[rows];
        for (int r = 0; r < rows; r++) {
            expected[r] = m.dot(r, x, 0);
        }
        try (CpuBackend backend = new CpuBackend(2)) {
            Runnable engine = () -> {
                float[] out = new float[rows];
                for (int iter = 0; iter < 300; iter++) {
                    backend.matmul(m, x, out, 1);
                    for (int r = 0; r < rows; r++) {
                        assertThat(Math.abs(out[r] - expected[r])).isLessThanOrEqualTo(1e-3f * (1 + Math.abs(expected[r])));
                    }
                }
            };
            CompletableFuture.allOf(CompletableFuture.runAsync(engine), CompletableFuture.runAsync(engine)).join();
        }
    }
}
