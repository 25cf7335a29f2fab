package io.tandem.app;

import io.tandem.engine.DecodeEngine;
import io.tandem.engine.EngineConfig;
import io.tandem.engine.InProcessKvTransport;
import io.tandem.engine.PrefillEngine;
import io.tandem.engine.backend.Backend;
import io.tandem.engine.backend.CpuBackend;
import io.tandem.engine.model.LlamaModel;
import io.tandem.router.Router;
import io.tandem.router.ServingMetrics;
import io.tandem.router.worker.LocalDecodeWorker;
import io.tandem.router.worker.LocalPrefillWorker;
import io.tandem.router.worker.KvAwarePolicy;
import java.util.List;
import io.tandem.router.template.ChatTemplates;

/**
 * Router + one prefill engine + one decode engine in one JVM, handing KV over in memory: the
 * all-in-one deployment of {@code tandem serve} and {@code tandem generate}. Closes in reverse
 * order of construction (router, decode, prefill, backend, model).
 */
final class LocalDeployment implements AutoCloseable {
    final LlamaModel model;
    final Backend backend;
    final PrefillEngine prefill;
    final DecodeEngine decode;
    final Router router;
    private boolean closed;

    LocalDeployment(LlamaModel model, EngineConfig config, int threads, int maxInFlight, ServingMetrics metrics) {
        this.model = model;
        this.backend = new CpuBackend(threads);
        this.prefill = new PrefillEngine("prefill-0", model, backend, config);
        this.decode = new DecodeEngine(model, backend, config, new InProcessKvTransport(prefill));
        String bos = model.tokenizer().bosId() >= 0 ? model.tokenizer().tokenText(model.tokenizer().bosId()) : "";
        this.router = new Router(model, ChatTemplates.forTemplate(model.chatTemplate(), bos),
                List.of(new LocalPrefillWorker(prefill)), List.of(new LocalDecodeWorker("decode-0", decode)),
                new KvAwarePolicy(model.id(), KvAwarePolicy.DEFAULT_OVERLAP_WEIGHT), maxInFlight, metrics);
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        router.close();
        decode.close();
        prefill.close();
        backend.close();
        model.close();
    }
}
