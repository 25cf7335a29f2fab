package io.tandem.router.openai;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.util.ReferenceCountUtil;
import io.prometheus.metrics.expositionformats.ExpositionFormatWriter;
import io.prometheus.metrics.expositionformats.ExpositionFormats;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.tandem.engine.InvalidArgumentException;
import io.tandem.router.GenerationService;
import io.tandem.router.GenerationStream;
import io.tandem.router.ModelNotFoundException;
import io.tandem.router.OverloadedException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.HexFormat;
import java.util.concurrent.ThreadLocalRandom;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One connection's HTTP/1.1 exchanges. Requests are answered strictly in arrival order: while a
 * response is in flight (a generation may stream for minutes) later pipelined requests wait in a
 * queue, and reading from the socket pauses when that queue is full. Closing the connection
 * cancels the generation in flight.
 *
 * <p>Routes: {@code POST /v1/completions}, {@code POST /v1/chat/completions}, {@code GET /v1/models},
 * {@code GET /health}, {@code GET /metrics}. Runs on the channel's event loop only.
 */
final class OpenAiHttpHandler extends ChannelInboundHandlerAdapter {

    private static final Logger LOG = LoggerFactory.getLogger(OpenAiHttpHandler.class);
    /** Pipelined requests held at most before the handler stops reading the socket. */
    static final int MAX_PIPELINED_REQUESTS = 16;

    private final GenerationService service;
    private final PrometheusRegistry registry;
    private final ExpositionFormats expositionFormats;
    private final ObjectMapper mapper;
    private final int maxRequestBytes;
    private final CompletionsRequestParser completionsParser;
    private final ChatCompletionsRequestParser chatParser;

    private final ArrayDeque<HttpCall> pending = new ArrayDeque<>();
    private ChannelHandlerContext ctx;
    /** A response is being produced; later requests wait. */
    private boolean busy;
    /** {@link #processPending} is on the stack; a synchronous completion must not re-enter it. */
    private boolean processing;
    private GenerationStream activeStream;

    OpenAiHttpHandler(GenerationService service, PrometheusRegistry registry, ExpositionFormats expositionFormats,
            ObjectMapper mapper, int maxRequestBytes) {
        this.service = service;
        this.registry = registry;
        this.expositionFormats = expositionFormats;
        this.mapper = mapper;
        this.maxRequestBytes = maxRequestBytes;
        this.completionsParser = new CompletionsRequestParser(service);
        this.chatParser = new ChatCompletionsRequestParser(service);
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
        this.ctx = ctx;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        HttpCall call;
        if (msg instanceof FullHttpRequest request) {
            try {
                call = HttpCall.from(request);
            } finally {
                request.release();
            }
        } else if (msg instanceof HttpCall tooLarge) {
            call = tooLarge;
        } else {
            ReferenceCountUtil.release(msg);
            return;
        }
        pending.add(call);
        if (pending.size() >= MAX_PIPELINED_REQUESTS) {
            ctx.channel().config().setAutoRead(false);
        }
        processPending();
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) throws Exception {
        pending.clear();
        if (activeStream != null) {
            activeStream.cancel();
            activeStream = null;
        }
        super.channelInactive(ctx);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        LOG.debug("closing connection {} after an error", ctx.channel().remoteAddress(), cause);
        ctx.close();
    }

    private void processPending() {
        processing = true;
        try {
            while (!busy && ctx.channel().isActive() && !pending.isEmpty()) {
                busy = true;
                dispatch(pending.poll());
            }
        } finally {
            processing = false;
        }
        if (pending.size() < MAX_PIPELINED_REQUESTS && !ctx.channel().config().isAutoRead()) {
            ctx.channel().config().setAutoRead(true);
        }
    }

    /** Ends the exchange in flight once {@code lastWrite} is queued: close, or go on with the next request. */
    private void complete(ChannelFuture lastWrite, boolean keepAlive) {
        busy = false;
        activeStream = null;
        if (!keepAlive) {
            pending.clear();
            lastWrite.addListener(ChannelFutureListener.CLOSE);
        } else if (!processing) {
            processPending();
        }
    }

    private void dispatch(HttpCall call) {
        switch (call.problem()) {
            case MALFORMED -> {
                sendError(call, OpenAiError.invalidRequest(null, "malformed HTTP request"), null);
                return;
            }
            case TOO_LARGE -> {
                sendError(call, new OpenAiError(HttpResponseStatus.REQUEST_ENTITY_TOO_LARGE, OpenAiError.INVALID_REQUEST,
                        "request body exceeds " + maxRequestBytes + " bytes", null, null, 0), null);
                return;
            }
            case NONE -> {}
        }
        switch (call.path()) {
            case "/v1/completions" -> ifMethod(call, HttpMethod.POST, () -> generate(call, OpenAiRequest.Endpoint.COMPLETIONS));
            case "/v1/chat/completions" -> ifMethod(call, HttpMethod.POST, () -> generate(call, OpenAiRequest.Endpoint.CHAT_COMPLETIONS));
            case "/v1/models" -> ifMethod(call, HttpMethod.GET, () -> sendJson(call, OpenAiResponses.models(service.listModels())));
            case "/health" -> ifMethod(call, HttpMethod.GET, () -> send(call, HttpResponses.body(HttpResponseStatus.OK,
                    "text/plain; charset=utf-8", new byte[0], call.keepAlive())));
            case "/metrics" -> ifMethod(call, HttpMethod.GET, () -> sendMetrics(call));
            default -> sendError(call, new OpenAiError(HttpResponseStatus.NOT_FOUND, OpenAiError.INVALID_REQUEST,
                    "Invalid URL (" + call.method() + " " + call.path() + ")", null, null, 0), null);
        }
    }

    private void ifMethod(HttpCall call, HttpMethod allowed, Runnable handler) {
        if (call.method().equals(allowed)) {
            handler.run();
        } else {
            sendError(call, new OpenAiError(HttpResponseStatus.METHOD_NOT_ALLOWED, OpenAiError.INVALID_REQUEST,
                    "method " + call.method() + " is not allowed on " + call.path() + "; use " + allowed, null, null, 0),
                    allowed);
        }
    }

    private void generate(HttpCall call, OpenAiRequest.Endpoint endpoint) {
        String id = (endpoint == OpenAiRequest.Endpoint.COMPLETIONS ? "cmpl-" : "chatcmpl-") + randomHex();
        long created = System.currentTimeMillis() / 1000;
        GenerationResponder responder;
        try {
            JsonNode body = parseBody(call.body());
            OpenAiRequest request = switch (endpoint) {
                case COMPLETIONS -> completionsParser.parse(body, id);
                case CHAT_COMPLETIONS -> chatParser.parse(body, id);
            };
            OpenAiResponses responses = new OpenAiResponses(id, created, request.model());
            responder = request.stream()
                    ? new SseResponder(ctx, request, responses, mapper, call.keepAlive(), f -> complete(f, call.keepAlive()))
                    : new BufferedResponder(ctx, request, responses, mapper, call.keepAlive(), f -> complete(f, call.keepAlive()));
            activeStream = service.generate(request.completion(), responder);
        } catch (InvalidArgumentException e) {
            // A chat request has no prompt field: the router's prompt is the conversation rendered from messages.
            boolean chatPrompt = endpoint == OpenAiRequest.Endpoint.CHAT_COMPLETIONS && "prompt".equals(e.param());
            sendError(call, OpenAiError.invalidRequest(chatPrompt ? "messages" : e.param(), e.getMessage()), null);
            return;
        } catch (ModelNotFoundException | OverloadedException e) {
            sendError(call, OpenAiError.from(e), null);
            return;
        } catch (RuntimeException e) {
            LOG.warn("request {} failed before generation started", id, e);
            sendError(call, OpenAiError.from(e), null);
            return;
        }
        responder.start();
    }

    /** Decodes the body as strict UTF-8 (malformed bytes are an error, not U+FFFD) and parses it as JSON. */
    private JsonNode parseBody(byte[] body) {
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(body))
                    .toString();
        } catch (CharacterCodingException e) {
            throw new InvalidArgumentException(null, "the request body is not valid UTF-8");
        }
        if (text.isBlank()) {
            throw new InvalidArgumentException(null, "the request body is empty; expected a JSON object");
        }
        try {
            return mapper.readTree(text);
        } catch (JsonProcessingException e) {
            throw new InvalidArgumentException(null, "the request body is not valid JSON: " + e.getOriginalMessage());
        }
    }

    private void sendMetrics(HttpCall call) {
        ExpositionFormatWriter writer = expositionFormats.findWriter(call.accept());
        if (!writer.isAvailable()) {
            writer = expositionFormats.getPrometheusTextFormatWriter();
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream(4096);
        try {
            writer.write(out, registry.scrape());
        } catch (IOException e) {
            throw new IllegalStateException("writing metrics to memory failed", e);
        }
        send(call, HttpResponses.body(HttpResponseStatus.OK, writer.getContentType(), out.toByteArray(), call.keepAlive()));
    }

    private void sendJson(HttpCall call, ObjectNode body) {
        send(call, HttpResponses.json(HttpResponseStatus.OK, bytes(body), call.keepAlive()));
    }

    private void sendError(HttpCall call, OpenAiError error, HttpMethod allow) {
        boolean keepAlive = call.keepAlive() && call.problem() != HttpCall.Problem.MALFORMED;
        FullHttpResponse response = HttpResponses.error(error, bytes(error.toJson()), keepAlive);
        if (allow != null) {
            response.headers().set(HttpHeaderNames.ALLOW, allow.name());
        }
        complete(ctx.writeAndFlush(response), keepAlive);
    }

    private void send(HttpCall call, FullHttpResponse response) {
        complete(ctx.writeAndFlush(response), call.keepAlive());
    }

    private byte[] bytes(ObjectNode node) {
        try {
            return mapper.writeValueAsBytes(node);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("a JSON tree failed to serialize", e);
        }
    }

    private static String randomHex() {
        byte[] bytes = new byte[16];
        ThreadLocalRandom.current().nextBytes(bytes);
        return HexFormat.of().formatHex(bytes);
    }
}
