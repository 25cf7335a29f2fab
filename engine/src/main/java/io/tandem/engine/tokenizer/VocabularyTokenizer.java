package io.tandem.engine.tokenizer;

/**
 * What both GGUF tokenizers share: the {@link Vocabulary}, each token's decoded bytes (computed
 * once at construction, so decoding never allocates per token) and the BOS policy.
 */
abstract sealed class VocabularyTokenizer implements Tokenizer permits SentencePieceTokenizer, Gpt2BpeTokenizer {
    private static final byte[] NO_BYTES = new byte[0];

    final Vocabulary vocab;
    private final byte[][] pieces;
    private final boolean addBos;

    /**
     * @param pieces the bytes of each token, indexed by id ({@code null} entries mean no bytes)
     */
    VocabularyTokenizer(Vocabulary vocab, byte[][] pieces, boolean addBos) {
        if (pieces.length != vocab.size()) {
            throw new IllegalArgumentException(pieces.length + " pieces for " + vocab.size() + " tokens");
        }
        this.vocab = vocab;
        this.pieces = pieces;
        for (int i = 0; i < pieces.length; i++) {
            if (pieces[i] == null) {
                pieces[i] = NO_BYTES;
            }
        }
        this.addBos = addBos;
    }

    @Override
    public final byte[] tokenBytes(int id) {
        vocab.checkId(id);
        return pieces[id].clone();
    }

    @Override
    public final int tokenByteLength(int id) {
        vocab.checkId(id);
        return pieces[id].length;
    }

    @Override
    public final void copyTokenBytes(int id, byte[] dst, int offset) {
        vocab.checkId(id);
        System.arraycopy(pieces[id], 0, dst, offset, pieces[id].length);
    }

    /** The shared bytes of a token; callers must not modify them. */
    final byte[] piece(int id) {
        vocab.checkId(id);
        return pieces[id];
    }

    @Override
    public final int vocabSize() {
        return vocab.size();
    }

    @Override
    public final int bosId() {
        return vocab.bosId();
    }

    @Override
    public final int eosId() {
        return vocab.eosId();
    }

    @Override
    public final boolean addBos() {
        return addBos;
    }

    @Override
    public final boolean isControl(int id) {
        return vocab.type(id) == TokenType.CONTROL;
    }

    @Override
    public final boolean isEndOfGeneration(int id) {
        return vocab.isEndOfGeneration(id);
    }

    @Override
    public final String tokenText(int id) {
        return vocab.text(id);
    }

    /** Appends BOS to {@code out}. @throws IllegalStateException if the vocabulary has none */
    final void appendBos(TokenIdList out) {
        if (vocab.bosId() == Vocabulary.NONE) {
            throw new IllegalStateException("BOS requested but the vocabulary has no BOS token");
        }
        out.add(vocab.bosId());
    }
}
