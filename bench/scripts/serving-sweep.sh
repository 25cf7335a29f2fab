#!/usr/bin/env bash
# Serving sweep on one machine: starts `tandem serve` on a model, runs `tandem bench serve` at
# several concurrencies, then measures TTFT of prompts sharing a long prefix with and without
# prefix caching. Prints one summary line per run and keeps every result JSON.
#
#   bench/scripts/serving-sweep.sh [OUT_DIR]
#
# Environment (defaults in brackets):
#   MODEL_ARGS   model options for tandem serve [--load-format dummy --arch llama-3.2-1b --dtype q8_0]
#   THREADS      compute threads [all]          CONCURRENCY  list of concurrencies [1 8 32]
#   INPUT_LEN    prompt tokens [32]             OUTPUT_LEN   output tokens [64]
#   PREFIX_LEN   shared prefix for the TTFT runs [1024]; 0 skips them
#   PREFIX_PROMPTS  requests in each TTFT run [5]
#   ROUNDS       times to repeat the concurrency list on the same server [1]. On a shared, noisy
#                host each round's ratio (last concurrency / first) compares runs minutes apart,
#                and the median over rounds is printed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$(mktemp -d /tmp/tandem-sweep.XXXXXX)}
mkdir -p "$out"
model_args=${MODEL_ARGS:---load-format dummy --arch llama-3.2-1b --dtype q8_0}
threads=${THREADS:-0}
input_len=${INPUT_LEN:-32}
output_len=${OUTPUT_LEN:-64}
prefix_len=${PREFIX_LEN:-1024}
prefix_prompts=${PREFIX_PROMPTS:-5}
tandem="$repo/bin/tandem"
server_pid=""

start_server() { # extra serve options...
  local log="$out/serve-$1.log"; shift
  # shellcheck disable=SC2086
  "$tandem" serve $model_args --threads "$threads" --max-model-len 2048 --http-port 0 --grpc-port 0 "$@" \
    > "$log.out" 2> "$log" &
  server_pid=$!
  for _ in $(seq 1 600); do
    if grep -q "tandem: serving on" "$log.out" 2>/dev/null; then
      endpoint=$(sed -n 's|^tandem: serving on \(http://[^ ]*\) (OpenAI).*|\1|p' "$log.out")
      return 0
    fi
    kill -0 "$server_pid" 2>/dev/null || { echo "tandem serve exited; see $log" >&2; exit 1; }
    sleep 1
  done
  echo "tandem serve not ready after 600 s; see $log" >&2; exit 1
}

stop_server() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
trap stop_server EXIT

summary() { # name json
  python3 - "$1" "$2" <<'PY'
import json, sys
name, path = sys.argv[1], sys.argv[2]
r = json.load(open(path))
def g(k):
    return r.get(k, float('nan'))
print(f"{name:<28} completed {g('completed'):>3}  failed {g('failed')}  output tok/s {g('output_throughput'):8.2f}  "
      f"TTFT p50/p99 ms {g('median_ttft_ms'):9.1f} / {g('p99_ttft_ms'):9.1f}  "
      f"TPOT p50/p99 ms {g('median_tpot_ms'):8.1f} / {g('p99_tpot_ms'):8.1f}")
PY
}

bench() { # name extra bench options...
  local name=$1; shift
  "$tandem" bench serve --endpoint "$endpoint" --seed 0 --save-result "$out/$name.json" "$@" \
    > "$out/$name.txt" 2> "$out/$name.err"
  summary "$name" "$out/$name.json"
}

echo "tandem serving sweep: $model_args, threads ${threads/#0/all}, input $input_len, output $output_len; results in $out"
uptime
start_server main
bench warmup --num-prompts 2 --input-len "$input_len" --output-len 8 --max-concurrency 1 > /dev/null
concurrencies=${CONCURRENCY:-1 8 32}
rounds=${ROUNDS:-1}
for round in $(seq 1 "$rounds"); do
  prefix=""; [ "$rounds" -gt 1 ] && prefix="round-$round-"
  for c in $concurrencies; do
    n=$(( c * 2 )); [ "$n" -lt 4 ] && n=4
    bench "${prefix}concurrency-$c" --num-prompts "$n" --input-len "$input_len" --output-len "$output_len" --max-concurrency "$c"
  done
done
if [ "$rounds" -gt 1 ]; then
  python3 - "$out" "$rounds" $concurrencies <<'PY'
import json, statistics, sys
out, rounds, cs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
lo, hi = cs[0], cs[-1]
ratios = []
for r in range(1, rounds + 1):
    tput = {c: json.load(open(f"{out}/round-{r}-concurrency-{c}.json"))["output_throughput"] for c in (lo, hi)}
    ratios.append(tput[hi] / tput[lo])
    print(f"round {r}: concurrency {hi} / concurrency {lo} output tok/s = {tput[hi]:.2f} / {tput[lo]:.2f} = {ratios[-1]:.2f}x")
print(f"median over {rounds} rounds: {statistics.median(ratios):.2f}x (min {min(ratios):.2f}x, max {max(ratios):.2f}x)")
PY
fi
if [ "$prefix_len" -gt 0 ]; then
  bench "prefix-$prefix_len-cached" --dataset-name prefix --prefix-len "$prefix_len" --input-len "$input_len" \
    --output-len 8 --num-prompts "$prefix_prompts" --max-concurrency 1
  stop_server
  start_server nocache --no-enable-prefix-caching
  bench warmup-nocache --num-prompts 2 --input-len "$input_len" --output-len 8 --max-concurrency 1 > /dev/null
  bench "prefix-$prefix_len-uncached" --dataset-name prefix --prefix-len "$prefix_len" --input-len "$input_len" \
    --output-len 8 --num-prompts "$prefix_prompts" --max-concurrency 1
fi
uptime
