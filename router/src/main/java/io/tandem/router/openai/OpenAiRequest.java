package io.tandem.router.openai;

import io.tandem.router.CompletionRequest;

/**
 * One parsed OpenAI generation request: what to generate and how to answer.
 *
 * @param endpoint     which API shape the response takes
 * @param completion   the request as the router takes it
 * @param model        model id echoed in the response's {@code model} field
 * @param stream       answer as server-sent events
 * @param includeUsage {@code stream_options.include_usage}: send a usage chunk before {@code [DONE]}
 */
record OpenAiRequest(Endpoint endpoint, CompletionRequest completion, String model, boolean stream, boolean includeUsage) {

    /** The two generation endpoints. */
    enum Endpoint {
        /** {@code POST /v1/completions}: objects {@code text_completion}. */
        COMPLETIONS,
        /** {@code POST /v1/chat/completions}: objects {@code chat.completion} / {@code chat.completion.chunk}. */
        CHAT_COMPLETIONS
    }
}
