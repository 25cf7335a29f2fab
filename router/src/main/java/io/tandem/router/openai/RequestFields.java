package io.tandem.router.openai;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tandem.engine.InvalidArgumentException;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;

/**
 * Typed reads of optional fields of an OpenAI request body. A field that is absent or JSON
 * {@code null} reads as {@code null}; a field of the wrong JSON type throws
 * {@link InvalidArgumentException} naming the field, so the client gets a 400 with {@code param}.
 * Numbers are strict: {@code "16"} is not an integer, {@code 16.5} is not an integer, {@code 16.0} is.
 */
final class RequestFields {

    private RequestFields() {}

    /** The request body, which must be a JSON object. */
    static ObjectNode requireObject(JsonNode body) {
        if (!(body instanceof ObjectNode object)) {
            throw new InvalidArgumentException(null, "the request body must be a JSON object");
        }
        return object;
    }

    static String optString(ObjectNode body, String field, String param) {
        JsonNode node = body.get(field);
        if (isAbsent(node)) {
            return null;
        }
        if (!node.isTextual()) {
            throw wrongType(param, "a string", node);
        }
        return node.textValue();
    }

    static Boolean optBoolean(ObjectNode body, String field, String param) {
        JsonNode node = body.get(field);
        if (isAbsent(node)) {
            return null;
        }
        if (!node.isBoolean()) {
            throw wrongType(param, "a boolean", node);
        }
        return node.booleanValue();
    }

    static Integer optInt(ObjectNode body, String field, String param) {
        JsonNode node = body.get(field);
        if (isAbsent(node)) {
            return null;
        }
        return intValue(node, param);
    }

    /** The value of an integral JSON number that fits an {@code int}. */
    static int intValue(JsonNode node, String param) {
        if (!isIntegral(node) || !node.canConvertToInt()) {
            throw wrongType(param, "an integer", node);
        }
        return node.asInt();
    }

    static Long optLong(ObjectNode body, String field, String param) {
        JsonNode node = body.get(field);
        if (isAbsent(node)) {
            return null;
        }
        if (!isIntegral(node) || !node.canConvertToLong()) {
            throw wrongType(param, "an integer", node);
        }
        return node.asLong();
    }

    static Float optFloat(ObjectNode body, String field, String param) {
        JsonNode node = body.get(field);
        if (isAbsent(node)) {
            return null;
        }
        if (!node.isNumber()) {
            throw wrongType(param, "a number", node);
        }
        return (float) node.doubleValue();
    }

    /** OpenAI {@code stop}: a string, an array of strings, or absent. */
    static List<String> optStop(ObjectNode body) {
        JsonNode node = body.get("stop");
        if (isAbsent(node)) {
            return List.of();
        }
        if (node.isTextual()) {
            return List.of(node.textValue());
        }
        if (!node.isArray()) {
            throw wrongType("stop", "a string or an array of strings", node);
        }
        List<String> stop = new ArrayList<>(node.size());
        for (int i = 0; i < node.size(); i++) {
            JsonNode element = node.get(i);
            if (!element.isTextual()) {
                throw wrongType("stop[" + i + "]", "a string", element);
            }
            stop.add(element.textValue());
        }
        return stop;
    }

    /**
     * Rejects a field Tandem does not implement unless its value is one that changes nothing
     * (absent, {@code null}, or accepted by {@code harmless}, e.g. {@code n: 1}).
     */
    static void rejectUnsupported(ObjectNode body, String field, Predicate<JsonNode> harmless) {
        JsonNode node = body.get(field);
        if (!isAbsent(node) && !harmless.test(node)) {
            throw new InvalidArgumentException(field, field + " is not supported by this server, got " + preview(node));
        }
    }

    static boolean isAbsent(JsonNode node) {
        return node == null || node.isNull();
    }

    private static boolean isIntegral(JsonNode node) {
        if (node.isIntegralNumber()) {
            return true;
        }
        if (!node.isFloatingPointNumber()) {
            return false;
        }
        double value = node.doubleValue();
        return value == Math.rint(value) && !Double.isInfinite(value);
    }

    static InvalidArgumentException wrongType(String param, String expected, JsonNode actual) {
        return new InvalidArgumentException(param, param + " must be " + expected + ", got " + preview(actual));
    }

    /** The JSON text of {@code node}, cut to 50 characters so an error message stays short. */
    static String preview(JsonNode node) {
        String text = node.toString();
        return text.length() <= 50 ? text : text.substring(0, 50) + "…";
    }
}
