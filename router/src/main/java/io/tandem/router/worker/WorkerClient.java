package io.tandem.router.worker;

/** What the router's handles on prefill and decode workers share: an id and a load to route by. */
public interface WorkerClient extends AutoCloseable {
    /** Stable id of the worker. */
    String workerId();

    /** The latest known load; {@link WorkerLoad#healthy()} false while the worker does not answer. */
    WorkerLoad load();

    @Override
    void close();
}
