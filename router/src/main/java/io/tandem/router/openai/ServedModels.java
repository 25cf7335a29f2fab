package io.tandem.router.openai;

import io.tandem.router.GenerationService;
import io.tandem.router.ModelCard;
import io.tandem.router.ModelNotFoundException;
import java.util.List;

/** Finds the {@link ModelCard} a request names, for the response's {@code model} and the chat default length. */
final class ServedModels {

    private ServedModels() {}

    /**
     * The card of the requested model; {@code null} or empty {@code model} means the only one served.
     *
     * @throws ModelNotFoundException when no such model is served (or none was named and several are)
     */
    static ModelCard find(GenerationService service, String model) {
        List<ModelCard> models = service.listModels();
        if (model == null || model.isEmpty()) {
            if (models.size() == 1) {
                return models.getFirst();
            }
            throw new ModelNotFoundException(model == null ? "" : model);
        }
        for (ModelCard card : models) {
            if (card.id().equals(model)) {
                return card;
            }
        }
        throw new ModelNotFoundException(model);
    }
}
