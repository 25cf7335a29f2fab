package io.tandem.router.openai;

import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.http.HttpMessage;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpUtil;

/**
 * {@link HttpObjectAggregator} that, instead of answering an oversized request itself, passes an
 * {@link HttpCall} with {@link HttpCall.Problem#TOO_LARGE} down the pipeline, so the handler answers
 * 413 in pipeline order with an OpenAI error body. The aggregator then discards the rest of that
 * body and the connection stays usable.
 */
final class RequestAggregator extends HttpObjectAggregator {

    RequestAggregator(int maxRequestBytes) {
        super(maxRequestBytes);
    }

    @Override
    protected void handleOversizedMessage(ChannelHandlerContext ctx, HttpMessage oversized) {
        if (oversized instanceof HttpRequest request) {
            ctx.fireChannelRead(HttpCall.tooLarge(request.method(), request.uri(), HttpUtil.isKeepAlive(request)));
        } else {
            ctx.close();
        }
    }
}
