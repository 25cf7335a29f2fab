package io.tandem.router.openai;

import io.netty.buffer.Unpooled;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;

/** Whole (non-streamed) HTTP responses: JSON bodies, OpenAI errors, plain bodies. */
final class HttpResponses {

    private HttpResponses() {}

    static FullHttpResponse json(HttpResponseStatus status, byte[] json, boolean keepAlive) {
        return body(status, HttpHeaderValues.APPLICATION_JSON.toString(), json, keepAlive);
    }

    /** The error's status and JSON body, with {@code Retry-After} when it has one. */
    static FullHttpResponse error(OpenAiError error, byte[] json, boolean keepAlive) {
        FullHttpResponse response = json(error.status(), json, keepAlive);
        if (error.retryAfterSeconds() > 0) {
            response.headers().set(HttpHeaderNames.RETRY_AFTER, error.retryAfterSeconds());
        }
        return response;
    }

    static FullHttpResponse body(HttpResponseStatus status, String contentType, byte[] body, boolean keepAlive) {
        FullHttpResponse response = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, status, Unpooled.wrappedBuffer(body));
        response.headers().set(HttpHeaderNames.CONTENT_TYPE, contentType);
        HttpUtil.setContentLength(response, body.length);
        HttpUtil.setKeepAlive(response, keepAlive);
        return response;
    }
}
