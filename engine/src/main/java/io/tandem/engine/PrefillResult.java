package io.tandem.engine;

import io.tandem.kvcache.KvHandle;

/**
 * A finished prefill: the first generated token and where the prompt's KV lives.
 *
 * @param requestId    request id
 * @param firstToken   token sampled after the last prompt token
 * @param kvHandle     the prompt's KV pages, kept under a lease until released, with their page
 *                     summaries unless the worker has them off ({@link io.tandem.kvcache.KvHandle#pageSummaries})
 * @param queueNanos   time from submission to the first scheduled chunk
 * @param computeNanos time from the first scheduled chunk to the first token
 */
public record PrefillResult(String requestId, int firstToken, KvHandle kvHandle, long queueNanos, long computeNanos) {}
