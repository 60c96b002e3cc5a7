#!/usr/bin/env bash
# Ingest benchmark: requests/s and latency percentiles under wrk of
#   (a) bare:    a plain net/http handler that reads the body and answers 200
#                (bench/bare), and
#   (b) webhook: `rulebook run bench/webhook.yml`, a webhook source writing
#                every event durably to the journal, with a rule matching
#                every event,
# then the ratio (b)/(a). Two targets in between locate the cost (both
# bench/ingestpath, no rule engine): "source", the webhook source whose Emit
# returns at once (HTTP checks, parsing, event building), and "journal", the
# webhook source writing to the embedded journal with a reader marking
# records done (the durable ingest path alone). Target (issue 3): ratio >= 0.5
# and p99 < 10 ms at 32 connections.
#
# A fifth target bounds that ratio: "floor" (bench/floor), a net/http handler
# that only group-commits each body to a preallocated file with fdatasync
# before answering. No durable receiver can be faster on this machine, so
# floor/bare is the best ratio any of them can reach here.
#
# Throughput is counted in accepted (2xx) requests per second: under
# back-pressure the durable path answers 503 with Retry-After, quickly, and
# those answers go to the non-2xx column, not into the throughput (wrk's
# latency percentiles do include them). Socket errors make the script fail;
# wrk timeouts (no answer within 2 s) are counted apart.
#
#   bench/ingest.sh                 # 3 interleaved rounds of 10 s per target,
#                                   # 2 threads, 32 connections; medians
#   DURATION=30s ROUNDS=5 CONNS=64 bench/ingest.sh
#   ONLY=bare,webhook bench/ingest.sh   # some targets (bare, floor, source, journal, webhook)
#
# Needs wrk (installed by test/setup.sh) and Go. Traffic stays on 127.0.0.1.
# Results are also written to bench/results/ingest-<UTC time>.txt.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNS=${CONNS:-32}
WARMUP=${WARMUP:-2s}
BARE_PORT=${BARE_PORT:-18080}
HOOK_PORT=${HOOK_PORT:-18081}
JOURNAL_PORT=${JOURNAL_PORT:-18082}
SOURCE_PORT=${SOURCE_PORT:-18083}
FLOOR_PORT=${FLOOR_PORT:-18084}
ONLY=${ONLY:-}
ROUNDS=${ROUNDS:-3}

command -v wrk >/dev/null || { echo "ingest.sh: wrk is missing; run test/setup.sh" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/rulebook-bench.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# wait_port PORT PID: wait until something accepts on 127.0.0.1:PORT, while
# PID is alive, for at most 30 s.
wait_port() {
  local port=$1 pid=$2 deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "ingest.sh: process $pid exited before listening on $port" >&2
      return 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "ingest.sh: nothing listens on 127.0.0.1:$port after 30 s" >&2
  return 1
}

# port_free PORT: fail if something already listens on 127.0.0.1:PORT (a
# leftover server would be measured in place of the target).
port_free() {
  if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
    echo "ingest.sh: 127.0.0.1:$1 is already in use; stop what listens there or set the target's *_PORT" >&2
    return 1
  fi
}

# to_ms VALUE: wrk's "1.23ms", "456.00us", "1.20s" in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
    else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.3f", v * 60000 }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
    else { printf "%s", v }
  }'
}

# Per target, one value per round: "r1 r2 ...".
declare -A rps p50 p90 p99 non2xx sockerrs timeouts

# measure NAME PORT: warm up, then run wrk and append its figures.
measure() {
  local name=$1 port=$2 out
  wrk -t"$THREADS" -c"$CONNS" -d"$WARMUP" -s "$repo/bench/post.lua" "http://127.0.0.1:$port/" >/dev/null
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$repo/bench/post.lua" "http://127.0.0.1:$port/")
  echo "--- $name, round $round (wrk -t$THREADS -c$CONNS -d$DURATION)"
  echo "$out"
  # Accepted requests/s: the 2xx answers only (a 503 under back-pressure is
  # quick, and must not count as throughput).
  local bad
  bad=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out")
  rps[$name]+=" $(awk -v bad="${bad:-0}" '
    / requests in / {
      n = $1; d = $4; sub(/,$/, "", d)
      if (d ~ /ms$/) { sub(/ms$/, "", d); d /= 1000 }
      else if (d ~ /m$/) { sub(/m$/, "", d); d *= 60 }
      else { sub(/s$/, "", d) }
      printf "%.2f", (n - bad) / d
    }' <<<"$out")"
  p50[$name]+=" $(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")"
  p90[$name]+=" $(to_ms "$(awk '$1 == "90%" {print $2}' <<<"$out")")"
  p99[$name]+=" $(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")"
  local sockerr
  # Connect/read/write errors are the server's fault; timeouts (no answer
  # within wrk's 2 s) are reported apart: on a loaded machine they are stalls.
  sockerr=$(awk '/Socket errors:/ {gsub(",", ""); print $4 + $6 + $8}' <<<"$out")
  non2xx[$name]=$(( ${non2xx[$name]:-0} + ${bad:-0} ))
  sockerrs[$name]=$(( ${sockerrs[$name]:-0} + ${sockerr:-0} ))
  timeouts[$name]=$(( ${timeouts[$name]:-0} + $(awk '/Socket errors:/ {gsub(",", ""); print $10}' <<<"$out") + 0 ))
}

# median "v1 v2 ...": the median of the values.
median() {
  tr ' ' '\n' <<<"$1" | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

wanted() { [[ -z $ONLY || ,$ONLY, == *,$1,* ]]; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# fsync_cost: the time of one 512-byte O_DSYNC write in the work directory
# (the journal's disk), the floor of a durable acknowledgement, and the CPU
# it costs (user + system; in a VM a sync can cost a lot of it, and every
# group commit pays one).
fsync_cost() {
  local n=200 out
  out=$( { TIMEFORMAT='%3R %3U %3S'; time dd if=/dev/zero of="$work/dsync" bs=512 count=$n oflag=dsync 2>/dev/null; } 2>&1 ) || { echo "?"; return; }
  rm -f "$work/dsync"
  awk -v n=$n '{ printf "%.3f ms (%.0f us of CPU)", $1 * 1000 / n, ($2 + $3) * 1e6 / n }' <<<"$out"
}
fsync_before=$(fsync_cost)
mkdir -p "$work/bin"
echo "building (go build) ..."
(cd "$repo" && go build -o "$work/bin/bare" ./bench/bare && go build -o "$work/bin/floor" ./bench/floor && go build -o "$work/bin/ingestpath" ./bench/ingestpath)

# Start every target once; they idle while another is measured.
for t in "bare:$BARE_PORT" "floor:$FLOOR_PORT" "source:$SOURCE_PORT" "journal:$JOURNAL_PORT" "webhook:$HOOK_PORT"; do
  if wanted "${t%%:*}"; then
    port_free "${t##*:}"
  fi
done
targets=()
if wanted bare; then
  "$work/bin/bare" -addr "127.0.0.1:$BARE_PORT" &
  pids+=($!)
  wait_port "$BARE_PORT" "${pids[-1]}"
  targets+=("bare:$BARE_PORT")
fi
if wanted floor; then
  "$work/bin/floor" -addr "127.0.0.1:$FLOOR_PORT" -dir "$work/floor" 2>"$work/floor.log" &
  pids+=($!)
  if ! wait_port "$FLOOR_PORT" "${pids[-1]}"; then
    cat "$work/floor.log" >&2
    exit 1
  fi
  targets+=("floor:$FLOOR_PORT")
fi
if wanted source; then
  "$work/bin/ingestpath" -addr "127.0.0.1:$SOURCE_PORT" -store none 2>"$work/source.log" &
  pids+=($!)
  if ! wait_port "$SOURCE_PORT" "${pids[-1]}"; then
    cat "$work/source.log" >&2
    exit 1
  fi
  targets+=("source:$SOURCE_PORT")
fi
if wanted journal; then
  "$work/bin/ingestpath" -addr "127.0.0.1:$JOURNAL_PORT" -data-dir "$work/journal" 2>"$work/ingestpath.log" &
  pids+=($!)
  if ! wait_port "$JOURNAL_PORT" "${pids[-1]}"; then
    cat "$work/ingestpath.log" >&2
    exit 1
  fi
  targets+=("journal:$JOURNAL_PORT")
fi
if wanted webhook; then
  mkdir -p "$repo/bin"
  (cd "$repo" && go build -o bin/rulebook ./cmd/rulebook)
  sed "s/PORT/$HOOK_PORT/" "$repo/bench/webhook.yml" >"$work/webhook.yml"
  "$repo/bin/rulebook" run "$work/webhook.yml" --data-dir "$work/data" >"$work/rulebook.log" 2>&1 &
  pids+=($!)
  if ! wait_port "$HOOK_PORT" "${pids[-1]}"; then
    echo "--- rulebook log" >&2
    cat "$work/rulebook.log" >&2
    exit 1
  fi
  targets+=("webhook:$HOOK_PORT")
fi

# Interleaved rounds: a change in the machine's load hits every target
# alike, and the medians drop an unlucky round.
for ((round = 1; round <= ROUNDS; round++)); do
  for t in "${targets[@]}"; do
    measure "${t%%:*}" "${t##*:}"
  done
done

summary() {
  echo "medians of $ROUNDS interleaved round(s) of $DURATION, wrk -t$THREADS -c$CONNS, JSON POST of ~110 bytes"
  printf '%-8s %12s %9s %9s %9s %9s %7s %9s   %s\n' target "accepted/s" "p50 ms" "p90 ms" "p99 ms" "non-2xx" errors timeouts "accepted/s per round"
  declare -A med
  for n in bare floor source journal webhook; do
    [[ -n ${rps[$n]:-} ]] || continue
    med[$n]=$(median "${rps[$n]}")
    printf '%-8s %12s %9s %9s %9s %9s %7s %9s  %s\n' "$n" "${med[$n]}" "$(median "${p50[$n]}")" "$(median "${p90[$n]}")" "$(median "${p99[$n]}")" "${non2xx[$n]}" "${sockerrs[$n]}" "${timeouts[$n]}" "${rps[$n]}"
  done
  if [[ -n ${med[bare]:-} && -n ${med[floor]:-} ]]; then
    awk -v b="${med[bare]}" -v f="${med[floor]}" 'BEGIN { printf "ratio floor/bare: %.3f  (the best ratio a durable receiver can reach on this machine)\n", f / b }'
  fi
  for n in source journal webhook; do
    [[ -n ${med[bare]:-} && -n ${med[$n]:-} ]] || continue
    awk -v n="$n" -v b="${med[bare]}" -v w="${med[$n]}" -v p="$(median "${p99[$n]}")" -v c="$CONNS" 'BEGIN {
      r = w / b
      printf "ratio %s/bare: %.3f", n, r
      printf "  (target ratio >= 0.5 and p99 < 10 ms at 32 connections: %s)\n", (r >= 0.5 && p < 10 && c == 32) ? "met" : "not met"
    }'
  done
  [[ -n ${rps[webhook]:-} ]] || echo "webhook (rulebook run): not measured"
  echo "machine: $(nproc) cores, $(uname -sr), $(go version | awk '{print $3}'), load average before: $load_before"
  echo "one 512-byte O_DSYNC write: $fsync_before before, $fsync_after after"
}

fsync_after=$(fsync_cost)
echo
mkdir -p "$repo/bench/results"
result="$repo/bench/results/ingest-$(date -u +%Y%m%dT%H%M%SZ).txt"
summary | tee "$result"
echo "(written to ${result#"$repo"/})"
for n in floor source journal webhook; do
  if [[ ${sockerrs[$n]:-0} -ne 0 ]]; then
    echo "ingest.sh: target $n had ${sockerrs[$n]} connect/read/write errors" >&2
    exit 1
  fi
done
