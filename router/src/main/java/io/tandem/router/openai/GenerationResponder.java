package io.tandem.router.openai;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.tandem.engine.FinishReason;
import io.tandem.router.GenerationListener;
import io.tandem.router.Usage;
import java.util.concurrent.RejectedExecutionException;
import java.util.function.Consumer;

/**
 * Writes one request's output to its HTTP exchange. The router calls the listener methods from
 * its own threads; each call hops onto the channel's event loop, so every write and every piece
 * of state here is touched by that one thread, in the order the router produced them.
 */
abstract sealed class GenerationResponder implements GenerationListener permits BufferedResponder, SseResponder {

    final ChannelHandlerContext ctx;
    final OpenAiRequest request;
    final OpenAiResponses responses;
    final ObjectMapper mapper;
    private final Consumer<ChannelFuture> onComplete;
    private boolean completed;

    /**
     * @param onComplete called on the event loop with the future of the exchange's last write,
     *                   once, when the response is complete
     */
    GenerationResponder(ChannelHandlerContext ctx, OpenAiRequest request, OpenAiResponses responses, ObjectMapper mapper,
            Consumer<ChannelFuture> onComplete) {
        this.ctx = ctx;
        this.request = request;
        this.responses = responses;
        this.mapper = mapper;
        this.onComplete = onComplete;
    }

    /** Called on the event loop once the router admitted the request, before any output. */
    abstract void start();

    abstract void output(String textDelta);

    /** Writes the end of a successful response; returns the future of the last write. */
    abstract ChannelFuture finish(FinishReason reason, Usage usage);

    /** Writes the end of a failed response; returns the future of the last write. */
    abstract ChannelFuture fail(OpenAiError error);

    @Override
    public final void onOutput(int[] tokenIds, String textDelta) {
        onEventLoop(() -> {
            if (!completed) {
                output(textDelta);
            }
        });
    }

    @Override
    public final void onFinish(FinishReason reason, Usage usage) {
        onEventLoop(() -> {
            if (!completed) {
                completed = true;
                onComplete.accept(finish(reason, usage));
            }
        });
    }

    @Override
    public final void onError(Throwable error) {
        onEventLoop(() -> {
            if (!completed) {
                completed = true;
                onComplete.accept(fail(OpenAiError.from(error)));
            }
        });
    }

    final byte[] json(ObjectNode node) {
        try {
            return mapper.writeValueAsBytes(node);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("a JSON tree failed to serialize", e);
        }
    }

    private void onEventLoop(Runnable task) {
        try {
            ctx.executor().execute(task);
        } catch (RejectedExecutionException e) {
            // The event loop is shutting down: the connection is gone and so is the client.
        }
    }
}
