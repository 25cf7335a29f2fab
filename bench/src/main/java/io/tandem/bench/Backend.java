package io.tandem.bench;

import java.io.IOException;
import java.util.List;

/**
 * A client of one serving API, as vLLM's backend request functions: sends one streamed request and
 * times it. Every request asks for greedy decoding ({@code temperature 0}), {@code ignore_eos} and
 * {@code max_tokens = expectedOutputLen}, so the server generates exactly the requested length.
 * Thread-safe: the runner sends from many virtual threads at once.
 */
public interface Backend extends AutoCloseable {

    /**
     * The ids of the models the server serves, in its order.
     *
     * @throws IOException when the server cannot be reached or answers with an error
     */
    List<String> listModels() throws IOException, InterruptedException;

    /**
     * Sends {@code request} to {@code model} and waits until its stream ends, fails or exceeds the
     * backend's timeout. Failures of any kind (transport, HTTP status, gRPC status, timeout) are
     * returned as {@link RequestResult.Failure}, never thrown.
     *
     * @throws InterruptedException when the waiting thread is interrupted; the request is cancelled
     */
    RequestResult send(String model, SampleRequest request) throws InterruptedException;

    /** Releases connections; idempotent. */
    @Override
    void close();
}
