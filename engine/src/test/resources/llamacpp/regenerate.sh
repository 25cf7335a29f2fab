#!/usr/bin/env bash
# Regenerates the llama.cpp outputs in this folder, verbatim from ../shared/tools/llamacpp-ref/run.sh
# (llama.cpp's CPU build in node-llama-cpp 3.22.1; greedy; stops at EOS, which it leaves out):
#   stories260K-prompts.jsonl  stories260K.gguf, --max 64       (LlamaCppParityTest)
#   stories260K-long.jsonl     stories260K.gguf, --max 200      (LlamaCppParityTest)
#   tiny-<dtype>-seed0.jsonl   DummyModels.write(TINY, <dtype>, seed 0), --max 64 (DummyModelParityTest)
#   tiny-seed0.sha256          sha256sum of those dummy files, so the test knows it runs the same bytes
# Needs node/npm (run.sh installs node-llama-cpp once) and a JDK 25. Run from anywhere:
#   engine/src/test/resources/llamacpp/regenerate.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../../../.." && pwd)
shared=${TANDEM_SHARED_DIR:-$repo/../shared}
ref="$shared/tools/llamacpp-ref/run.sh"
# One thread: llama.cpp's float sums then do not depend on how rows are split between threads.
export LLAMA_THREADS=1

stories="$shared/models/stories260K/stories260K.gguf"
"$ref" "$stories" --max 64 \
  'Tom said, "Hi!"' \
  'Where did the little dog go?' \
  $'The cat sat.\nThe dog ran.\n\nThen' \
  'Mia ate a crème brûlée and said: “yum” 🍰' \
  '  Two  spaces   here' \
  'The end </s> <s> yes' \
  'One day, a little girl named Sue went to the park with her mom. She saw a big red ball under a tree. Sue wanted to play with the ball, but a big dog was near it. The dog barked, and Sue was scared. Her mom said, "Do not be afraid, Sue. The dog is nice." Sue walked to the dog and gave it a hug. The dog was happy and' \
  > "$here/stories260K-prompts.jsonl"
"$ref" "$stories" --max 200 \
  'Sam had a toy car. He' \
  > "$here/stories260K-long.jsonl"

# The dummy models are a pure function of (architecture, dtype, seed): write them with the very
# code the test calls, DummyModels.write, into a temporary folder.
(cd "$repo" && ./mvnw -B -q -o -pl engine -am compile)
# shellcheck source=../../../../../bin/java25-home.sh
. "$repo/bin/java25-home.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/ExportDummy.java" <<'JAVA'
import io.tandem.engine.model.DummyArchitecture;
import io.tandem.engine.model.DummyModels;
import io.tandem.engine.tensor.GgmlType;
import java.nio.file.Path;

class ExportDummy {
    public static void main(String[] args) throws Exception {
        DummyModels.write(DummyArchitecture.byName(args[0]), GgmlType.valueOf(args[1]), Long.parseLong(args[2]),
                Path.of(args[3]));
    }
}
JAVA
: > "$tmp/sums"
for dtype in F32 Q8_0 Q4_0; do
  name="tiny-$(echo "$dtype" | tr 'A-Z' 'a-z')-seed0"
  "$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
    -cp "$repo/engine/target/classes:$repo/kvcache/target/classes" "$tmp/ExportDummy.java" tiny "$dtype" 0 "$tmp/$name.gguf"
  (cd "$tmp" && sha256sum "$name.gguf") >> "$tmp/sums"
  "$ref" "$tmp/$name.gguf" --max 64 \
    'the cat sat on the mat' \
    'hello world' \
    'a b c d e f g' \
    'once upon a time there was a dog named max' \
    'Hello, World! 42' \
    > "$here/$name.jsonl"
done
mv "$tmp/sums" "$here/tiny-seed0.sha256"
