package io.tandem.kvcache;

import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.agrona.collections.Int2IntHashMap;

/**
 * How far a prefill has computed the K/V of one prompt, layer by layer, so that its pages can be
 * sent while later layers (or later chunks) are still being computed: per layer, the number of
 * leading prompt tokens whose K and V are written into the paged cache ({@code numComputedTokens}
 * per layer). Page {@code (layer, block)} is final once that count covers the block's tokens:
 * {@code min((i + 1) × blockSize, numTokens)} for the block at logical index {@code i}.
 *
 * <p>Threads: one writer, the prefill engine thread ({@link #advance}, {@link #advanceAll},
 * {@link #finish}, {@link #fail}), which publishes after the K/V writes it covers (a volatile
 * write), and any number of readers ({@link #isFinal}), whose volatile read of the count happens
 * before they read the page. {@link #whenChanged} wakes a reader once at the next change; the
 * writer runs wake-ups inline, so they must only hand work to another thread (a Netty event
 * loop's {@code execute}).
 */
public final class LayerProgress {
    private static final int COMPUTING = 0;
    private static final int FINISHED = 1;
    private static final int FAILED = 2;
    private static final LayerProgress ALWAYS_FINISHED = new LayerProgress();

    private final int numTokens;
    private final int blockSize;
    /** Physical block id → logical index in the prompt; immutable after construction. */
    private final Int2IntHashMap blockIndex;
    /** Per layer: prompt tokens whose K/V of that layer are written. */
    private final AtomicIntegerArray computedTokens;
    private final ConcurrentLinkedQueue<Runnable> waiters = new ConcurrentLinkedQueue<>();
    private volatile int state;

    /**
     * Progress of a prompt that has not started computing.
     *
     * @param numLayers layers of the model
     * @param blockIds  the prompt's physical block ids in logical order
     * @param numTokens prompt tokens (≤ {@code blockIds.length × blockSize})
     * @param blockSize tokens per block
     */
    public LayerProgress(int numLayers, int[] blockIds, int numTokens, int blockSize) {
        if (numTokens > (long) blockIds.length * blockSize) {
            throw new IllegalArgumentException(numTokens + " tokens do not fit " + blockIds.length + " blocks of "
                    + blockSize);
        }
        this.numTokens = numTokens;
        this.blockSize = blockSize;
        this.blockIndex = new Int2IntHashMap(Math.max(4, 2 * blockIds.length), 0.65f, -1);
        for (int i = 0; i < blockIds.length; i++) {
            blockIndex.put(blockIds[i], i);
        }
        this.computedTokens = new AtomicIntegerArray(numLayers);
    }

    private LayerProgress() {
        this.numTokens = 0;
        this.blockSize = 1;
        this.blockIndex = new Int2IntHashMap(-1);
        this.computedTokens = new AtomicIntegerArray(0);
        this.state = FINISHED;
    }

    /** The progress of KV that is complete before anyone sees it (a prefill exported at its end). */
    public static LayerProgress finished() {
        return ALWAYS_FINISHED;
    }

    /** Prompt tokens. */
    public int numTokens() {
        return numTokens;
    }

    /** Tokens of {@code layer} whose K/V are written (all of them once {@link #isFinished()}). */
    public int numComputedTokens(int layer) {
        return state == FINISHED ? numTokens : computedTokens.get(layer);
    }

    /**
     * Whether page {@code (layer, blockId)} holds its final K/V. A block the prompt does not own is
     * never final (a caller checked ownership before asking); after {@link #fail()} nothing is.
     */
    public boolean isFinal(int layer, int blockId) {
        int s = state;
        if (s == FINISHED) {
            return true;
        }
        if (s == FAILED) {
            return false;
        }
        int index = blockIndex.get(blockId);
        if (index < 0) {
            return false;
        }
        return computedTokens.get(layer) >= Math.min((index + 1) * blockSize, numTokens);
    }

    /** Every layer is computed for every token. */
    public boolean isFinished() {
        return state == FINISHED;
    }

    /** The prefill ended without computing every page (cancelled, failed, engine shut down). */
    public boolean isFailed() {
        return state == FAILED;
    }

    /**
     * Runs {@code wakeUp} once, at the next change (an advance, the end, a failure), or at once if
     * the progress has already ended. A reader registers, then re-checks, so no change is missed.
     */
    public void whenChanged(Runnable wakeUp) {
        waiters.add(wakeUp);
        if (state != COMPUTING) {
            wakeAll();
        }
    }

    /** Engine thread: {@code layer}'s K/V are written for the first {@code numComputed} tokens. */
    public void advance(int layer, int numComputed) {
        if (numComputed > computedTokens.get(layer)) {
            computedTokens.set(layer, numComputed);
            wakeAll();
        }
    }

    /** Engine thread: every layer's K/V are written for the first {@code numComputed} tokens (a cached prefix). */
    public void advanceAll(int numComputed) {
        for (int layer = 0; layer < computedTokens.length(); layer++) {
            if (numComputed > computedTokens.get(layer)) {
                computedTokens.set(layer, numComputed);
            }
        }
        wakeAll();
    }

    /** Engine thread: every page is final. */
    public void finish() {
        if (state == COMPUTING) {
            state = FINISHED;
        }
        wakeAll();
    }

    /** Engine thread: the prefill ended early; pages that are not final never will be. */
    public void fail() {
        if (state == COMPUTING) {
            state = FAILED;
        }
        wakeAll();
    }

    private void wakeAll() {
        Runnable wakeUp;
        while ((wakeUp = waiters.poll()) != null) {
            wakeUp.run();
        }
    }
}
