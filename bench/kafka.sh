#!/usr/bin/env bash
# Kafka benchmark through the real binary (issue 7):
#   (1) consume: N messages pre-filled into a topic with kcat are consumed by
#       the kafka source of `rulebook run` (embedded journal) through a rule
#       that matches every message, with the none action; reports messages/s
#       from the first to the last firing (read from /metrics).
#   (2) bus: wrk posts to the webhook source of `rulebook run --bus ...`
#       (each event produced to Kafka with acks=all before the 2xx, consumed
#       by the same process through a matching rule); reports accepted/s and
#       p99, next to the embedded journal's figure from bench/ingest.sh.
# Needs kcat and wrk (test/setup.sh installs both). The broker is kfake
# (test/kafkatest/cmd/kfake), 3 brokers, in its own process.
#
# Besides the wall-clock rate, (1) prints the CPU (user+sys) the rulebook
# process spent per message between the first and the last firing, from
# /proc: a figure a busy machine disturbs far less than the rate. The
# broker runs on the same cores.
#
#   N=200000 DURATION=10s bench/kafka.sh
#   N=200000 ONLY=consume bench/kafka.sh     # (1) only
#   RULEBOOK=/path/to/binary bench/kafka.sh  # measure another build
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-200000}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

if [ -n "${RULEBOOK:-}" ]; then cp "$RULEBOOK" "$work/rulebook"; else go build -o "$work/rulebook" ./cmd/rulebook; fi
go build -o "$work/kfake" ./test/kafkatest/cmd/kfake

"$work/kfake" --brokers 3 --partitions 6 --topics events,bus --addr-file "$work/addrs" >"$work/kfake.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/addrs" ] && break; sleep 0.1; done
brokers=$(paste -sd, "$work/addrs")

metric() { # name → summed value from the admin /metrics
  curl -s "http://$1/metrics" | awk -v m="$2" 'index($0, m"{") == 1 || $1 == m {s += $NF} END {printf "%d", s}'
}
wait_ready() { for _ in $(seq 200); do curl -sf "http://$1/readyz" >/dev/null && return 0; sleep 0.05; done; echo "not ready: $1" >&2; return 1; }

# (1) consume through a rule
seq "$N" | sed 's/.*/{"n":&}/' | kcat -P -b "$brokers" -t events
cat >"$work/consume.yml" <<YAML
- name: consume
  sources:
    - name: k
      kafka: {brokers: "$brokers", topic: events, group_id: bench, offset: earliest}
  rules:
    - name: every message
      condition: event.body.n > 0
      action: {none: {}}
YAML
"$work/rulebook" run "$work/consume.yml" --data-dir "$work/c" --admin 127.0.0.1:18301 --log-level warn >"$work/c.out" 2>"$work/c.err" &
cpid=$!
pids+=($cpid)
cputicks() { awk '{print $14 + $15}' "/proc/$cpid/stat"; }
wait_ready 127.0.0.1:18301
start=""
while :; do
  n=$(metric 127.0.0.1:18301 rulebook_rule_firings_total)
  now=$(date +%s.%N)
  [ -z "$start" ] && [ "$n" -gt 0 ] && { start=$now; first=$n; cpu0=$(cputicks); }
  [ "$n" -ge "$N" ] && break
  sleep 0.05
done
cpu1=$(cputicks)
consume=$(awk -v n="$N" -v f="$first" -v a="$start" -v b="$now" 'BEGIN {printf "%.0f", (n-f)/(b-a)}')
cpu_per=$(awk -v n="$N" -v f="$first" -v a="$cpu0" -v b="$cpu1" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", (b-a)/hz*1e6/(n-f)}')
if [ "${ONLY:-}" = consume ]; then
  echo "kafka benchmark ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
  printf "consume through a matching rule (embedded journal): %s messages/s, %s µs CPU per message (%s messages)\n" "$consume" "$cpu_per" "$N"
  exit 0
fi

# (2) webhook on the bus
cat >"$work/bus.yml" <<YAML
- name: bus
  sources:
    - name: hook
      webhook: {address: "127.0.0.1:18302", path: /}
  rules:
    - name: every event
      condition: event.payload.n >= 0
      action: {none: {}}
YAML
"$work/rulebook" run "$work/bus.yml" --data-dir "$work/b" --bus "kafka://$brokers/bus" --bus-key 'event.payload.n' \
  --admin 127.0.0.1:18303 --log-level warn >"$work/b.out" 2>"$work/b.err" &
pids+=($!)
wait_ready 127.0.0.1:18303
wrk -t2 -c"$CONNS" -d2s -s bench/post.lua http://127.0.0.1:18302/ >/dev/null 2>&1 || true
wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s bench/post.lua http://127.0.0.1:18302/ >"$work/wrk.txt" 2>&1
bus_rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
bus_p99=$(awk '$1=="99%" {print $2}' "$work/wrk.txt")
non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.txt"); non2xx=${non2xx:-0}

echo "kafka benchmark ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
printf "consume through a matching rule (embedded journal): %s messages/s, %s µs CPU per message (%s messages)\n" "$consume" "$cpu_per" "$N"
printf "webhook on the bus (acks=all, consumed by the same process): %s requests/s, p99 %s, non-2xx %s (wrk -t2 -c%s -d%s)\n" "$bus_rps" "$bus_p99" "$non2xx" "$CONNS" "$DURATION"
