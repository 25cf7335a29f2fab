#!/usr/bin/env bash
# Disaggregated (1 prefill + 1 decode worker behind a router) versus aggregated (`tandem serve`)
# at the same offered load: the same `tandem bench serve` arguments (Poisson arrivals, seed 0)
# against each deployment in turn, on the same model and the same cores. Prints one summary line
# per deployment and keeps every result JSON and log.
#
#   bench/scripts/disagg-vs-serve.sh [OUT_DIR]
#
# Environment (defaults in brackets):
#   MODEL_ARGS       model options for every process [--load-format dummy --arch llama-3.2-1b --dtype q8_0]
#   SERVE_THREADS    compute threads of `tandem serve` [2]
#   PREFILL_THREADS  compute threads of the prefill worker [1]
#   DECODE_THREADS   compute threads of the decode worker [1]
#   RATE             offered load, requests/s (Poisson) [0.5]    NUM_PROMPTS  requests per run [24]
#   MAX_CONCURRENCY  client-side cap [16]     INPUT_LEN  prompt tokens [128]    OUTPUT_LEN  output tokens [32]
#   AFTER_PREFILL=1  also run the 1P1D cluster with --kv-transfer-mode after_prefill (default: overlap only)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$(mktemp -d /tmp/tandem-disagg.XXXXXX)}
mkdir -p "$out"
model_args=${MODEL_ARGS:---load-format dummy --arch llama-3.2-1b --dtype q8_0}
tandem="$repo/bin/tandem"
bench_args=(--seed 0 --request-rate "${RATE:-0.5}" --num-prompts "${NUM_PROMPTS:-24}"
  --max-concurrency "${MAX_CONCURRENCY:-16}" --input-len "${INPUT_LEN:-128}" --output-len "${OUTPUT_LEN:-32}")
serve_pid=""

cleanup() {
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null || true
  RUN_DIR="$out/cluster" "$repo/deploy/local/cluster.sh" stop > /dev/null 2>&1 || true
}
trap cleanup EXIT

summary() { # name json
  python3 - "$1" "$2" <<'PY'
import json, sys
name, path = sys.argv[1], sys.argv[2]
r = json.load(open(path))
g = lambda k: r.get(k, float('nan'))
print(f"{name:<8} completed {g('completed'):>3}  failed {g('failed')}  req/s {g('request_throughput'):6.3f}  "
      f"output tok/s {g('output_throughput'):7.2f}  TTFT p50/p99 ms {g('median_ttft_ms'):8.1f} / {g('p99_ttft_ms'):8.1f}  "
      f"TPOT p50/p99 ms {g('median_tpot_ms'):7.1f} / {g('p99_tpot_ms'):7.1f}")
PY
}

bench() { # name endpoint
  "$tandem" bench serve --endpoint "$2" --save-result "$out/$1.json" "${bench_args[@]}" > "$out/$1.txt" 2> "$out/$1.err"
  summary "$1" "$out/$1.json"
}

warmup() { # endpoint
  "$tandem" bench serve --endpoint "$1" --seed 1 --num-prompts 2 --max-concurrency 1 --input-len 16 --output-len 4 \
    > /dev/null 2>&1
}

echo "disaggregated vs aggregated: $model_args; bench ${bench_args[*]}; results in $out"
uptime

# shellcheck disable=SC2086
"$tandem" serve $model_args --threads "${SERVE_THREADS:-2}" --http-port 0 --grpc-port 0 \
  > "$out/serve.out" 2> "$out/serve.log" &
serve_pid=$!
for _ in $(seq 1 600); do
  grep -q "tandem: serving on" "$out/serve.out" 2>/dev/null && break
  kill -0 "$serve_pid" 2>/dev/null || { echo "tandem serve exited; see $out/serve.log" >&2; exit 1; }
  sleep 1
done
endpoint=$(sed -n 's|^tandem: serving on \(http://[^ ]*\) (OpenAI).*|\1|p' "$out/serve.out")
warmup "$endpoint"
bench serve "$endpoint"
kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true; serve_pid=""

cluster_bench() { # name router options...
  local name=$1; shift
  # shellcheck disable=SC2086
  RUN_DIR="$out/cluster" DETACH=1 READY_TIMEOUT=600 ROUTER_ARGS="$*" \
    PREFILL_ARGS="--threads ${PREFILL_THREADS:-1}" DECODE_ARGS="--threads ${DECODE_THREADS:-1}" \
    "$repo/deploy/local/cluster.sh" 1 1 $model_args > "$out/$name-cluster.out" 2> "$out/$name-cluster.log"
  endpoint=$(awk '$1 == "http" { print $2 }' "$out/cluster/endpoints")
  warmup "$endpoint"
  bench "$name" "$endpoint"
  RUN_DIR="$out/cluster" "$repo/deploy/local/cluster.sh" stop > /dev/null 2>&1
}

cluster_bench 1P1D
if [ "${AFTER_PREFILL:-0}" = 1 ]; then
  cluster_bench 1P1D-after --kv-transfer-mode after_prefill
fi
uptime
