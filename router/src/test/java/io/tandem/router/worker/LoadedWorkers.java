package io.tandem.router.worker;

import io.tandem.engine.DecodeRequest;
import io.tandem.engine.PrefillCallback;
import io.tandem.engine.PrefillRequest;
import io.tandem.engine.TokenSink;
import io.tandem.kvcache.CachedBlockHashes;
import io.tandem.kvcache.KvHandle;
import io.tandem.kvcache.PageSummaries;

/**
 * Workers that only report a load the test sets, for routing-policy tests: a policy reads nothing
 * but {@link WorkerClient#load()}, and the real load sources (engine stats, polled load reports) are
 * tested where they are made. Sending work to them is a test error.
 */
final class LoadedWorkers {
    private LoadedWorkers() {}

    static WorkerLoad prefillLoad(long queuedPrefillTokens, CachedBlockHashes cached) {
        return new WorkerLoad(true, 0, 0, queuedPrefillTokens, 100, 100, cached, System.nanoTime());
    }

    static WorkerLoad decodeLoad(int numRunning, int numFreeBlocks) {
        return new WorkerLoad(true, numRunning, 0, 0, numFreeBlocks, 100, CachedBlockHashes.NONE,
                System.nanoTime());
    }

    /** An id and a load the test sets. */
    abstract static class Loaded implements WorkerClient {
        private final String id;
        volatile WorkerLoad load;

        Loaded(String id, WorkerLoad load) {
            this.id = id;
            this.load = load;
        }

        @Override
        public String workerId() {
            return id;
        }

        @Override
        public WorkerLoad load() {
            return load;
        }

        /** Both client interfaces have it; nothing was sent, so nothing to cancel. */
        public void cancel(String requestId) {}

        @Override
        public void close() {}

        @Override
        public String toString() {
            return id;
        }
    }

    static final class Prefill extends Loaded implements PrefillWorkerClient {
        Prefill(String id, WorkerLoad load) {
            super(id, load);
        }

        @Override
        public boolean prefill(PrefillRequest request, PrefillCallback callback) {
            throw new AssertionError("a policy test sends no work");
        }

        @Override
        public void release(KvHandle handle) {}
    }

    static final class Decode extends Loaded implements DecodeWorkerClient {
        Decode(String id, WorkerLoad load) {
            super(id, load);
        }

        @Override
        public boolean decode(DecodeRequest request, TokenSink sink, Runnable notAccepted) {
            throw new AssertionError("a policy test sends no work");
        }

        @Override
        public void provideFirstToken(String requestId, int firstToken, PageSummaries pageSummaries) {
            throw new AssertionError("a policy test sends no work");
        }
    }
}
