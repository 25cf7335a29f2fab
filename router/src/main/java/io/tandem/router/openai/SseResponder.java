package io.tandem.router.openai;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.http.DefaultHttpContent;
import io.netty.handler.codec.http.DefaultHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.tandem.engine.FinishReason;
import io.tandem.router.Usage;
import java.nio.charset.StandardCharsets;
import java.util.function.Consumer;

/**
 * Streaming answer as server-sent events over chunked transfer: one {@code data: {json}\n\n} event
 * per text delta, a last chunk with {@code finish_reason}, a usage chunk when
 * {@code stream_options.include_usage}, then {@code data: [DONE]\n\n}. The headers go out with the
 * first event, so a request that fails before its first token (a worker's queue is full: 429 with
 * {@code Retry-After}) still gets its HTTP status and an OpenAI error object; a failure after the
 * headers went out becomes a {@code data: {"error": …}} event followed by {@code [DONE]}.
 */
final class SseResponder extends GenerationResponder {

    private static final byte[] DATA = "data: ".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] EVENT_END = "\n\n".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] DONE = "data: [DONE]\n\n".getBytes(StandardCharsets.US_ASCII);

    private final boolean keepAlive;
    private final boolean chat;

    SseResponder(ChannelHandlerContext ctx, OpenAiRequest request, OpenAiResponses responses, ObjectMapper mapper,
            boolean keepAlive, Consumer<ChannelFuture> onComplete) {
        super(ctx, request, responses, mapper, onComplete);
        this.keepAlive = keepAlive;
        this.chat = request.endpoint() == OpenAiRequest.Endpoint.CHAT_COMPLETIONS;
    }

    private boolean headSent;

    /** Nothing yet: the head waits for the first event (see the class comment). */
    @Override
    void start() {}

    private void sendHead() {
        if (headSent) {
            return;
        }
        headSent = true;
        HttpResponse head = new DefaultHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK);
        head.headers().set(HttpHeaderNames.CONTENT_TYPE, "text/event-stream; charset=utf-8");
        head.headers().set(HttpHeaderNames.CACHE_CONTROL, HttpHeaderValues.NO_CACHE);
        HttpUtil.setTransferEncodingChunked(head, true);
        HttpUtil.setKeepAlive(head, keepAlive);
        ctx.write(head);
        if (chat) {
            event(responses.chatChunk("assistant", "", null, request.includeUsage()));
        }
    }

    @Override
    void output(String textDelta) {
        if (textDelta.isEmpty()) {
            return;
        }
        sendHead();
        event(chat
                ? responses.chatChunk(null, textDelta, null, request.includeUsage())
                : responses.completionChunk(textDelta, null, request.includeUsage()));
        ctx.flush();
    }

    @Override
    ChannelFuture finish(FinishReason reason, Usage usage) {
        sendHead();
        event(chat
                ? responses.chatChunk(null, null, reason, request.includeUsage())
                : responses.completionChunk("", reason, request.includeUsage()));
        if (request.includeUsage()) {
            event(responses.usageChunk(chat, usage));
        }
        return done();
    }

    @Override
    ChannelFuture fail(OpenAiError error) {
        if (!headSent) {
            headSent = true;
            return ctx.writeAndFlush(HttpResponses.error(error, json(error.toJson()), keepAlive));
        }
        event(error.toJson());
        return done();
    }

    private ChannelFuture done() {
        ByteBuf done = ctx.alloc().buffer(DONE.length).writeBytes(DONE);
        ctx.write(new DefaultHttpContent(done));
        return ctx.writeAndFlush(LastHttpContent.EMPTY_LAST_CONTENT);
    }

    private void event(ObjectNode body) {
        byte[] json = json(body);
        ByteBuf buf = ctx.alloc().buffer(DATA.length + json.length + EVENT_END.length);
        buf.writeBytes(DATA).writeBytes(json).writeBytes(EVENT_END);
        ctx.write(new DefaultHttpContent(buf));
    }
}
