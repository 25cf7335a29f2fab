package io.tandem.router.openai;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.tandem.engine.FinishReason;
import io.tandem.router.Usage;
import java.util.function.Consumer;

/** Non-streaming answer: collects the text, then writes one JSON response. */
final class BufferedResponder extends GenerationResponder {

    private final boolean keepAlive;
    private final StringBuilder text = new StringBuilder();

    BufferedResponder(ChannelHandlerContext ctx, OpenAiRequest request, OpenAiResponses responses, ObjectMapper mapper,
            boolean keepAlive, Consumer<ChannelFuture> onComplete) {
        super(ctx, request, responses, mapper, onComplete);
        this.keepAlive = keepAlive;
    }

    @Override
    void start() {}

    @Override
    void output(String textDelta) {
        text.append(textDelta);
    }

    @Override
    ChannelFuture finish(FinishReason reason, Usage usage) {
        var body = switch (request.endpoint()) {
            case COMPLETIONS -> responses.completion(text.toString(), reason, usage);
            case CHAT_COMPLETIONS -> responses.chatCompletion(text.toString(), reason, usage);
        };
        return ctx.writeAndFlush(HttpResponses.json(HttpResponseStatus.OK, json(body), keepAlive));
    }

    @Override
    ChannelFuture fail(OpenAiError error) {
        FullHttpResponse response = HttpResponses.error(error, json(error.toJson()), keepAlive);
        return ctx.writeAndFlush(response);
    }
}
