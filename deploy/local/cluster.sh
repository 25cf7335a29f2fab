#!/usr/bin/env bash
# A disaggregated Tandem cluster on this machine: NUM_PREFILL `tandem prefill` and NUM_DECODE
# `tandem decode` workers and one `tandem router` in front of them, all on loopback.
#
#   deploy/local/cluster.sh NUM_PREFILL NUM_DECODE [WORKER OPTIONS...]   start, wait for every ready
#                                       line, print the router's endpoints, run until Ctrl-C / SIGTERM
#   deploy/local/cluster.sh stop        stop a cluster started from another shell (or detached)
#
# WORKER OPTIONS go to every worker (e.g. --model m.gguf --threads 2); the router gets the model
# options among them (--model, --load-format, --arch, --dtype, --seed, --max-model-len).
#
# Environment (defaults in brackets):
#   RUN_DIR        pids, logs and endpoints [${TMPDIR:-/tmp}/tandem-cluster]
#   BASE_PORT      first of consecutive ports: router http, router grpc, then per prefill worker grpc,
#                  kv, metrics and per decode worker grpc, metrics [0 = any free port everywhere]
#   HOST           address every process binds and advertises [127.0.0.1]
#   PREFILL_ARGS, DECODE_ARGS, ROUTER_ARGS   options for one role only (word-split)
#   TANDEM         the tandem launcher [bin/tandem of this checkout]
#   READY_TIMEOUT  seconds to wait for a ready line [120]
#   STOP_GRACE     seconds between SIGTERM and SIGKILL [15]
#   DETACH=1       return once ready, leaving the cluster running (stop it with `cluster.sh stop`)
#
# A decode worker's --kv-transfer-timeout [10] must stay below the prefill workers' --lease-timeout
# [30], or pages could be reused while on the wire; the script refuses a cluster that breaks this.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
run_dir=${RUN_DIR:-${TMPDIR:-/tmp}/tandem-cluster}
pids_file="$run_dir/pids"
tandem=${TANDEM:-$repo/bin/tandem}
host=${HOST:-127.0.0.1}
ready_timeout=${READY_TIMEOUT:-120}
stop_grace=${STOP_GRACE:-15}

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

log() { echo "cluster.sh: $*" >&2; }

alive() { kill -0 "$1" 2>/dev/null; }

# Pids of the running cluster in stop order (router, decode workers, prefill workers), one per line.
pids_of() { # role
  [ -f "$pids_file" ] && awk -v role="$1" '$1 == role { print $3 }' "$pids_file"
  return 0
}

# SIGTERM to every pid given, then SIGKILL to those still alive after the grace period.
terminate() { # pid...
  local pid deadline
  [ $# -gt 0 ] || return 0
  for pid in "$@"; do alive "$pid" && kill -TERM "$pid" 2>/dev/null || true; done
  deadline=$(( $(date +%s) + stop_grace ))
  for pid in "$@"; do
    while alive "$pid" && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
  done
  for pid in "$@"; do
    if alive "$pid"; then
      log "pid $pid still running after ${stop_grace}s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
}

# Router first (no new requests), then the workers: decode before prefill, so that decode workers
# release their handles while the prefill workers still listen. The marker tells a foreground
# cluster.sh that the processes it watches are going away on purpose.
stop_cluster() {
  [ -f "$pids_file" ] || return 0
  touch "$run_dir/stopping"
  # shellcheck disable=SC2046
  terminate $(pids_of router)
  # shellcheck disable=SC2046
  terminate $(pids_of decode)
  # shellcheck disable=SC2046
  terminate $(pids_of prefill)
  rm -f "$pids_file" "$run_dir/endpoints" "$run_dir/stopping"
}

fail() { stop_cluster; exit 1; }

if [ "${1-}" = "stop" ]; then
  [ $# -eq 1 ] || usage
  if [ ! -f "$pids_file" ]; then
    log "no cluster running (no $pids_file)"
    exit 0
  fi
  stop_cluster
  log "stopped"
  exit 0
fi

[ $# -ge 2 ] || usage
num_prefill=$1
num_decode=$2
shift 2
case "$num_prefill$num_decode" in *[!0-9]*) usage ;; esac
[ "$num_prefill" -ge 1 ] && [ "$num_decode" -ge 1 ] || { log "need at least one prefill and one decode worker"; exit 2; }
worker_args=("$@")
read -r -a prefill_args <<< "${PREFILL_ARGS:-}"
read -r -a decode_args <<< "${DECODE_ARGS:-}"
read -r -a router_args <<< "${ROUTER_ARGS:-}"

# The value of option $1 in the rest of the arguments (--name VALUE or --name=VALUE), or $2.
option_value() { # name default args...
  local name=$1 value=$2
  shift 2
  while [ $# -gt 0 ]; do
    case "$1" in
      "$name") [ $# -ge 2 ] && value=$2 ;;
      "$name"=*) value=${1#*=} ;;
    esac
    shift
  done
  echo "$value"
}

lease_timeout=$(option_value --lease-timeout 30 "${worker_args[@]}" "${prefill_args[@]}")
kv_transfer_timeout=$(option_value --kv-transfer-timeout 10 "${worker_args[@]}" "${decode_args[@]}")
if [ "$kv_transfer_timeout" -ge "$lease_timeout" ]; then
  log "--kv-transfer-timeout ($kv_transfer_timeout s) must be below --lease-timeout ($lease_timeout s)"
  exit 2
fi

# The router runs no engine: it takes only the model options of the worker options.
model_args=()
set -- "${worker_args[@]}"
while [ $# -gt 0 ]; do
  case "$1" in
    --model|--load-format|--arch|--dtype|--seed|--max-model-len)
      model_args+=("$1" "${2-}"); shift ;;
    --model=*|--load-format=*|--arch=*|--dtype=*|--seed=*|--max-model-len=*)
      model_args+=("$1") ;;
  esac
  shift
done

mkdir -p "$run_dir"
if [ -f "$pids_file" ]; then
  while read -r _ _ pid; do
    if alive "$pid"; then
      log "a cluster is already running (pid $pid, $pids_file); run '$0 stop' first"
      exit 1
    fi
  done < "$pids_file"
  rm -f "$pids_file"
fi
rm -f "$run_dir/stopping"

next_port=${BASE_PORT:-0}
# A port for the next listener: consecutive from BASE_PORT, or 0 (any free port).
port() {
  if [ "${BASE_PORT:-0}" -eq 0 ]; then echo 0; else echo "$next_port"; fi
}
advance() { [ "${BASE_PORT:-0}" -eq 0 ] || next_port=$((next_port + 1)); }
router_http_port=$(port); advance
router_grpc_port=$(port); advance

stopping=0
on_signal() {
  [ "$stopping" -eq 1 ] && return
  stopping=1
  log "stopping"
  stop_cluster
  exit 130
}
trap on_signal INT TERM

start() { # role name args...
  local role=$1 name=$2
  shift 2
  "$tandem" "$role" "$@" > "$run_dir/$name.out" 2> "$run_dir/$name.log" &
  echo "$role $name $!" >> "$pids_file"
}

# Prints the ready line of process $1 once it is printed; returns 1 if the process exits or times out.
await_ready() { # name pattern
  local name=$1 pattern=$2 pid deadline line
  pid=$(awk -v name="$name" '$2 == name { print $3 }' "$pids_file")
  deadline=$(( $(date +%s) + ready_timeout ))
  while true; do
    line=$(grep -m 1 -E "$pattern" "$run_dir/$name.out" 2>/dev/null || true)
    if [ -n "$line" ]; then
      echo "$line"
      return 0
    fi
    if ! alive "$pid"; then
      log "$name exited before it was ready; the end of $run_dir/$name.log:"
      tail -n 20 "$run_dir/$name.log" >&2 || true
      return 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      log "$name printed no ready line in ${ready_timeout}s; see $run_dir/$name.log"
      return 1
    fi
    sleep 0.2
  done
}

: > "$pids_file"
for i in $(seq 0 $((num_prefill - 1))); do
  grpc=$(port); advance; kv=$(port); advance; metrics=$(port); advance
  start prefill "prefill-$i" --host "$host" --worker-id "prefill-$i" --grpc-port "$grpc" --kv-port "$kv" \
    --metrics-port "$metrics" "${worker_args[@]}" "${prefill_args[@]}"
done
for i in $(seq 0 $((num_decode - 1))); do
  grpc=$(port); advance; metrics=$(port); advance
  start decode "decode-$i" --host "$host" --worker-id "decode-$i" --grpc-port "$grpc" --metrics-port "$metrics" \
    "${worker_args[@]}" "${decode_args[@]}"
done

prefill_targets=()
decode_targets=()
for i in $(seq 0 $((num_prefill - 1))); do
  line=$(await_ready "prefill-$i" '^tandem: prefill worker .* serving grpc ') || fail
  prefill_targets+=("$(sed -E 's/.* serving grpc ([^ ]+) kv .*/\1/' <<< "$line")")
  log "$line"
done
for i in $(seq 0 $((num_decode - 1))); do
  line=$(await_ready "decode-$i" '^tandem: decode worker .* serving grpc ') || fail
  decode_targets+=("$(sed -E 's/.* serving grpc ([^ ]+) metrics .*/\1/' <<< "$line")")
  log "$line"
done

start router router --host "$host" --http-port "$router_http_port" --grpc-port "$router_grpc_port" \
  --prefill "$(IFS=,; echo "${prefill_targets[*]}")" --decode "$(IFS=,; echo "${decode_targets[*]}")" \
  "${model_args[@]}" "${router_args[@]}"
line=$(await_ready router '^tandem: serving on http://') || fail
http_endpoint=$(sed -E 's|^tandem: serving on (http://[^ ]+) .*|\1|' <<< "$line")
grpc_endpoint=$(sed -E 's|.* and grpc ([^ ]+)$|\1|' <<< "$line")
printf 'http %s\ngrpc %s\n' "$http_endpoint" "$grpc_endpoint" > "$run_dir/endpoints"

# Scripts wait for this line.
echo "tandem cluster: $num_prefill prefill + $num_decode decode workers; router OpenAI $http_endpoint grpc $grpc_endpoint; run dir $run_dir"

if [ "${DETACH:-0}" = 1 ]; then
  trap - INT TERM
  exit 0
fi

# Run until a signal (trap above) or `cluster.sh stop` from elsewhere; a process that dies on its
# own brings the rest down.
while [ -f "$pids_file" ]; do
  entries=$(cat "$pids_file" 2>/dev/null || true)
  while read -r _ name pid; do
    if [ -n "$pid" ] && ! alive "$pid" && [ ! -f "$run_dir/stopping" ] && [ -f "$pids_file" ]; then
      log "$name (pid $pid) exited; the end of $run_dir/$name.log:"
      tail -n 20 "$run_dir/$name.log" >&2 || true
      fail
    fi
  done <<< "$entries"
  sleep 1 &
  wait $! || true
done
log "stopped"
