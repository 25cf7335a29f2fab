package io.tandem.router;

/** The request names a model this router does not serve (HTTP 404 {@code model_not_found}, gRPC {@code NOT_FOUND}). */
public final class ModelNotFoundException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final String model;

    public ModelNotFoundException(String model) {
        super("The model '" + model + "' does not exist");
        this.model = model;
    }

    /** The model id the client asked for. */
    public String model() {
        return model;
    }
}
