package io.tandem.engine;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import org.agrona.concurrent.Agent;
import org.agrona.concurrent.AgentRunner;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.ManyToOneConcurrentArrayQueue;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one thread that owns an engine's scheduler, block pool and sequences: an Agrona
 * {@link Agent} whose duty cycle drains a bounded command queue, then runs one engine step.
 * Other threads only {@link #enqueue} commands, which never blocks: a full queue returns
 * {@code false} and the caller rejects the request.
 *
 * <p>When idle the thread spins briefly, then parks up to 1 ms, so an idle engine costs no core
 * (two engines share a 2-core machine with the kernels' worker threads).
 *
 * <p>Shutdown: {@link #close} stops accepting commands, the thread finishes its step, applies every
 * command accepted before (so each request's callback or sink still gets its terminal call from
 * {@link #shutDown}), then runs {@link #shutDown}.
 *
 * @param <C> the engine's command type
 */
public abstract class EngineLoop<C> implements Agent, AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(EngineLoop.class);
    private final String roleName;
    private final ManyToOneConcurrentArrayQueue<C> commands;
    private final AgentRunner runner;
    /** {@link #onCommand} as the drain's handler, made once: a method reference per cycle allocates. */
    private final Consumer<C> commandHandler = this::onCommand;
    /** Set by {@link #close}: {@link #enqueue} refuses from then on. */
    private volatile boolean closed;
    /** Threads inside {@link #enqueue}; the final drain waits for those that passed the closed check. */
    private final AtomicInteger enqueuing = new AtomicInteger();

    protected EngineLoop(String roleName, int queueCapacity) {
        this.roleName = roleName;
        this.commands = new ManyToOneConcurrentArrayQueue<>(queueCapacity);
        this.runner = new AgentRunner(
                new BackoffIdleStrategy(64, 16, TimeUnit.MICROSECONDS.toNanos(1), TimeUnit.MILLISECONDS.toNanos(1)),
                e -> LOG.error("{} engine step failed", roleName, e), null, this);
    }

    /** Starts the engine thread. */
    protected final void start() {
        AgentRunner.startOnThread(runner, r -> {
            Thread t = new Thread(r, "tandem-" + roleName + "-engine");
            t.setDaemon(true);
            return t;
        });
    }

    /** Hands a command to the engine thread; {@code false} if the queue is full or the engine is closed. */
    protected final boolean enqueue(C command) {
        enqueuing.getAndIncrement();
        try {
            return !closed && commands.offer(command);
        } finally {
            enqueuing.getAndDecrement();
        }
    }

    @Override
    public final int doWork() {
        int work = commands.drain(commandHandler) + step();
        if (work > 0) {
            publishStats();
        }
        return work;
    }

    @Override
    public final String roleName() {
        return roleName;
    }

    /** Applies one command, on the engine thread. */
    protected abstract void onCommand(C command);

    /** Runs one step if there is work; returns how much was done (0 = idle). */
    protected abstract int step();

    /** Publishes the engine's load snapshot for other threads (after any work). */
    protected abstract void publishStats();

    /**
     * Applies the commands accepted before {@link #close}, then {@link #shutDown}. Runs on the engine
     * thread after its last step.
     */
    @Override
    public final void onClose() {
        // closed is set: once no producer is between its check and its offer, the queue holds every
        // command ever accepted, and nothing more can arrive.
        while (enqueuing.get() != 0) {
            Thread.onSpinWait();
        }
        commands.drain(commandHandler);
        shutDown();
    }

    /**
     * Ends every sequence still held, each callback or sink told exactly once, frees the blocks
     * and the KV memory (engine thread, after the last commands).
     */
    protected abstract void shutDown();

    /** Stops the engine thread after its current step, waiting for it. Idempotent. */
    @Override
    public void close() {
        closed = true;
        runner.close();
    }
}
