package io.tandem.kvcache;

/**
 * The free blocks in eviction order (vLLM's {@code FreeKVCacheBlockQueue}): an intrusive doubly
 * linked list through {@link KvBlock}, so a cached block that gets reused can be taken out of the
 * middle in O(1). The head is the next block to hand out (least recently freed); freed blocks go to
 * the tail.
 */
final class FreeKvCacheBlockQueue {
    private final KvBlock head = new KvBlock(-1);
    private final KvBlock tail = new KvBlock(-1);
    private int size;

    FreeKvCacheBlockQueue() {
        head.nextFree = tail;
        tail.prevFree = head;
    }

    int size() {
        return size;
    }

    /**
     * Removes and returns the head (the least recently freed block).
     *
     * @throws IllegalStateException if empty
     */
    KvBlock popLeft() {
        KvBlock b = head.nextFree;
        if (b == tail) {
            throw new IllegalStateException("no free KV block");
        }
        remove(b);
        return b;
    }

    /** Unlinks {@code b}, which must be in this queue. */
    void remove(KvBlock b) {
        if (b.prevFree == null || b.nextFree == null) {
            throw new IllegalStateException(b + " is not in the free queue");
        }
        b.prevFree.nextFree = b.nextFree;
        b.nextFree.prevFree = b.prevFree;
        b.prevFree = null;
        b.nextFree = null;
        size--;
    }

    /** Appends {@code b} at the tail (evicted last). */
    void append(KvBlock b) {
        if (b.prevFree != null || b.nextFree != null) {
            throw new IllegalStateException(b + " is already in the free queue");
        }
        KvBlock last = tail.prevFree;
        last.nextFree = b;
        b.prevFree = last;
        b.nextFree = tail;
        tail.prevFree = b;
        size++;
    }

    boolean contains(KvBlock b) {
        return b.prevFree != null;
    }

    /** The block evicted last (the most recently freed), or {@code null} if empty. */
    KvBlock last() {
        return tail.prevFree == head ? null : tail.prevFree;
    }

    /** The block freed just before {@code b} (evicted just before it), or {@code null} at the head. */
    KvBlock previous(KvBlock b) {
        return b.prevFree == head ? null : b.prevFree;
    }

    /** Block ids from head to tail; for tests and diagnostics. */
    int[] blockIds() {
        int[] ids = new int[size];
        int i = 0;
        for (KvBlock b = head.nextFree; b != tail; b = b.nextFree) {
            ids[i++] = b.blockId();
        }
        return ids;
    }
}
