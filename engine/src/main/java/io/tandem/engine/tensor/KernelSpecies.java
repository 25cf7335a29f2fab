package io.tandem.engine.tensor;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector shapes shared by the weight kernels.
 *
 * <p>{@link #F} is the preferred float shape (16 lanes with AVX-512, 8 with AVX2). A quantized
 * block of 32 weights is read as {@link #BYTES_PER_LOAD}-byte {@link #B} loads, each widened to
 * {@link #F} lanes ({@code vpmovsxbd} + {@code vcvtdq2ps} on x86). The kernels need at least 8
 * float lanes; {@link #VECTORIZED} is false on narrower machines (128-bit NEON) and the weight
 * kernels then run their scalar loops.
 *
 * <p>Kernels that use these species are written as flat methods: a vector passed to or returned
 * from a helper that C2 does not inline is boxed on the heap, which costs 10-100x.
 */
final class KernelSpecies {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final int LANES = F.length();
    static final boolean VECTORIZED = LANES >= 8 && LANES <= 16;
    /** Bytes widened into one float vector: one lane per byte. */
    static final int BYTES_PER_LOAD = LANES;
    static final VectorSpecies<Byte> B =
            VectorSpecies.of(byte.class, VectorShape.forBitSize(Math.max(64, LANES * 8)));
    /** Halves widened into one float vector: one lane per short. */
    static final VectorSpecies<Short> S =
            VectorSpecies.of(short.class, VectorShape.forBitSize(Math.max(64, LANES * 16)));
    static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;

    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    static final ValueLayout.OfShort SHORT_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfFloat FLOAT_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private KernelSpecies() {
    }
}
