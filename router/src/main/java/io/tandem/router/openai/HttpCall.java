package io.tandem.router.openai;

import io.netty.buffer.ByteBufUtil;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.QueryStringDecoder;

/**
 * One HTTP request as the handler queues it, its body copied out of the {@code ByteBuf} so that
 * no buffer outlives {@code channelRead} (pipelined requests wait in a queue).
 *
 * @param method    request method
 * @param path      URI path without query string
 * @param accept    the {@code Accept} header, or {@code null}
 * @param body      request body bytes (not yet decoded)
 * @param keepAlive whether the connection stays open after the response
 * @param problem   what was wrong with the request at the HTTP layer
 */
record HttpCall(HttpMethod method, String path, String accept, byte[] body, boolean keepAlive, Problem problem) {

    /** HTTP-level defects found before routing. */
    enum Problem {
        NONE,
        /** The body exceeded the server's limit (413). */
        TOO_LARGE,
        /** The request line or headers could not be decoded (400, connection closed). */
        MALFORMED
    }

    /** Copies what the handler needs from {@code request}; the caller still releases it. */
    static HttpCall from(FullHttpRequest request) {
        if (!request.decoderResult().isSuccess()) {
            return new HttpCall(request.method(), "", null, new byte[0], false, Problem.MALFORMED);
        }
        return new HttpCall(
                request.method(),
                new QueryStringDecoder(request.uri()).path(),
                request.headers().get(HttpHeaderNames.ACCEPT),
                ByteBufUtil.getBytes(request.content()),
                HttpUtil.isKeepAlive(request),
                Problem.NONE);
    }

    /** A request whose body exceeded the limit; its body is being discarded by the aggregator. */
    static HttpCall tooLarge(HttpMethod method, String uri, boolean keepAlive) {
        return new HttpCall(method, new QueryStringDecoder(uri).path(), null, new byte[0], keepAlive, Problem.TOO_LARGE);
    }
}
