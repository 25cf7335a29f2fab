package io.tandem.engine;

import java.util.concurrent.TimeUnit;
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
 * @param <C> the engine's command type
 */
public abstract class EngineLoop<C> implements Agent, AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(EngineLoop.class);
    private final String roleName;
    private final ManyToOneConcurrentArrayQueue<C> commands;
    private final AgentRunner runner;

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

    /** Hands a command to the engine thread; {@code false} if the queue is full. */
    protected final boolean enqueue(C command) {
        return !runner.isClosed() && commands.offer(command);
    }

    @Override
    public final int doWork() {
        int work = commands.drain(this::onCommand) + step();
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

    /** Ends every sequence still held (engine thread, after the last step). */
    @Override
    public abstract void onClose();

    /** Stops the engine thread after its current step, waiting for it. Idempotent. */
    @Override
    public void close() {
        runner.close();
    }
}
