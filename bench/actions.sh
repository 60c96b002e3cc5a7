#!/usr/bin/env bash
# bench/actions.sh: actions at event speed (issue 17, part 3). Every POST
# runs a tiny compiled program (bench/actions/tiny, C) that appends a line
# to a file. Targets, each started fresh per phase:
#   webhook     adnanh/webhook (built from its Go module into a temp GOBIN),
#               a hook running the program; skipped with a message when the
#               module cannot be fetched
#   forkhook    bench/actions/forkhook: a net/http handler doing what
#               adnanh/webhook's default hook does (answer, then run the
#               program with its output captured), nothing recorded
#   durablehook forkhook -durable: the same after a group-committed
#               write and fdatasync of each body, the least durability costs
#   promisehook forkhook -promises -durable: Rulebook's promises per command
#               kept with nothing else (the event synced before the 200, the
#               invocation synced before the program starts, the program
#               forked by a separate supervisor process that records it in
#               a reused slot, the result logged without waiting and the
#               slot freed after the next commit): the least they cost, so
#               parallel/promisehook is how far Rulebook is from that floor
#               and promisehook/forkhook how far the promises let it get
#   sequential  rulebook run, execution_strategy: sequential
#   parallel    rulebook run, execution_strategy: parallel
# Phases:
#   wrk         wrk -t2 -c32 for WRK_DURATION (15s): commands run per second
#               while the load lasts (lines the program appended / duration)
#               and the CPU (user+sys, of the server and its children) per
#               command
#   open        bench/actions/load: open-loop RATE (1000) requests/s for
#               OPEN_DURATION (20s); send-to-start latency p50/p99 from the
#               send time it records and the start time the program writes,
#               and the CPU (server and children) per command started: with
#               every request started, the whole cost of one event and its
#               command (the wrk phase's CPU figure also counts the events
#               accepted but not yet run when the backlog grows)
# Then the floor: fork+exec+wait of the program alone (without and with its
# output captured), one write+fsync; and, with sequential or parallel, the
# same fork+exec+wait while `rulebook run` takes RATE events/s through the
# journal and a rule with the none action (bench/webhook.yml): the machine
# left to commands run one after the other while the events arrive.
#
#   bench/actions.sh
#   WRK_DURATION=5s OPEN_DURATION=5s ONLY=forkhook,sequential bench/actions.sh
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
WRK_DURATION=${WRK_DURATION:-15s}
OPEN_DURATION=${OPEN_DURATION:-20s}
RATE=${RATE:-1000}
DRAIN_WAIT=${DRAIN_WAIT:-30s}
ONLY=${ONLY:-}
PORT=${PORT:-18091}

command -v wrk >/dev/null || { echo "actions.sh: wrk is missing; run test/setup.sh" >&2; exit 1; }
command -v cc >/dev/null || { echo "actions.sh: a C compiler (cc) is missing" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/rulebook-actions.XXXXXX")
server=""
loader=""
stop_server() {
  if [[ -n $server ]]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=""
  fi
}
cleanup() {
  [[ -z $loader ]] || kill "$loader" 2>/dev/null || true
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT

wanted() { [[ -z $ONLY || ,$ONLY, == *,$1,* ]]; }

wait_port() {
  local deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)); do
    kill -0 "$server" 2>/dev/null || { echo "actions.sh: server exited before listening" >&2; return 1; }
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "actions.sh: nothing listens on 127.0.0.1:$PORT after 30 s" >&2
  return 1
}

# cpu_ticks PID: user+sys of PID and its waited-for children, and of its
# children still running (Rulebook's supervisor daemon, which waits for the
# programs it starts), in clock ticks.
cpu_ticks() {
  local pids=$1 kids
  kids=$(cat /proc/"$1"/task/*/children 2>/dev/null || true)
  for k in $kids; do pids+=" $k"; done
  for p in $pids; do cat "/proc/$p/stat" 2>/dev/null || true; done |
    awk '{ sub(/^.*\) /, ""); t += $12 + $13 + $14 + $15 } END { print t + 0 }'
}

cc -O2 -o "$work/tiny" "$repo/bench/actions/tiny/tiny.c"
(cd "$repo" && go build -o "$work/load" ./bench/actions/load && go build -o "$work/forkhook" ./bench/actions/forkhook)

targets=()
if wanted webhook; then
  if GOBIN="$work/gobin" GOFLAGS= go install github.com/adnanh/webhook@latest >"$work/webhook-install.log" 2>&1; then
    targets+=(webhook)
  else
    echo "actions.sh: adnanh/webhook not measured: cannot build github.com/adnanh/webhook@latest:" >&2
    sed 's/^/  /' "$work/webhook-install.log" | head -3 >&2
  fi
fi
wanted forkhook && targets+=(forkhook)
wanted durablehook && targets+=(durablehook)
wanted promisehook && targets+=(promisehook)
if wanted sequential || wanted parallel; then
  (cd "$repo" && go build -o "$work/rulebook" ./cmd/rulebook)
  # The dedicated supervisor next to the engine, as installed; NOSUPERVISE=1
  # leaves it out (the engine then executes itself as the supervisor).
  if [[ -z ${NOSUPERVISE:-} && -d $repo/cmd/rulebook-supervise ]]; then
    (cd "$repo" && go build -o "$work/rulebook-supervise" ./cmd/rulebook-supervise)
  fi
  wanted sequential && targets+=(sequential)
  wanted parallel && targets+=(parallel)
fi

# start TARGET OUT: start TARGET fresh, its program appending to OUT.
start() {
  local t=$1 out=$2
  rm -rf "$work/data" && mkdir -p "$work/data"
  case $t in
  webhook)
    cat >"$work/hooks.json" <<JSON
[{"id": "run", "execute-command": "$work/tiny", "command-working-directory": "$work",
  "pass-arguments-to-command": [{"source": "string", "name": "$out"}, {"source": "payload", "name": "n"}]}]
JSON
    "$work/gobin/webhook" -hooks "$work/hooks.json" -ip 127.0.0.1 -port "$PORT" -urlprefix "" >"$work/$t.log" 2>&1 &
    url="http://127.0.0.1:$PORT/run"
    ;;
  forkhook)
    "$work/forkhook" -addr "127.0.0.1:$PORT" -prog "$work/tiny" -out "$out" >"$work/$t.log" 2>&1 &
    url="http://127.0.0.1:$PORT/"
    ;;
  durablehook)
    "$work/forkhook" -addr "127.0.0.1:$PORT" -prog "$work/tiny" -out "$out" -durable "$work/data" >"$work/$t.log" 2>&1 &
    url="http://127.0.0.1:$PORT/"
    ;;
  promisehook)
    "$work/forkhook" -addr "127.0.0.1:$PORT" -prog "$work/tiny" -out "$out" -durable "$work/data" -promises >"$work/$t.log" 2>&1 &
    url="http://127.0.0.1:$PORT/"
    ;;
  intake)
    # The events of the open loop through the journal and a rule, with
    # the none action: what taking the events costs, without commands.
    sed -e "s|PORT|$PORT|" "$repo/bench/webhook.yml" >"$work/intake.yml"
    "$work/rulebook" run "$work/intake.yml" --data-dir "$work/data" >"$work/$t.log" 2>&1 &
    url="http://127.0.0.1:$PORT/"
    ;;
  sequential | parallel)
    sed -e "s|PORT|$PORT|" -e "s|STRATEGY|$t|" -e "s|PROG|$work/tiny|" -e "s|OUT|$out|" \
      "$repo/bench/actions.yml" >"$work/actions.yml"
    "$work/rulebook" run "$work/actions.yml" --data-dir "$work/data" >"$work/$t.log" 2>&1 &
    url="http://127.0.0.1:$PORT/"
    ;;
  esac
  server=$!
  if ! wait_port; then
    cat "$work/$t.log" >&2
    exit 1
  fi
}

declare -A cps cpu open
hz=$(getconf CLK_TCK)
for t in "${targets[@]}"; do
  out="$work/$t.wrk.out"
  start "$t" "$out"
  c0=$(cpu_ticks "$server")
  wrk -t2 -c32 -d"$WRK_DURATION" -s "$repo/bench/post.lua" "$url" >"$work/$t.wrk" 2>&1
  c1=$(cpu_ticks "$server")
  lines=$(wc -l <"$out" 2>/dev/null || echo 0)
  secs=$(awk -v d="$WRK_DURATION" 'BEGIN { sub(/s$/, "", d); print d }')
  cps[$t]=$(awk -v n="$lines" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
  cpu[$t]=$(awk -v a="$c0" -v b="$c1" -v n="$lines" -v hz="$hz" 'BEGIN { if (n > 0) printf "%.0f", (b - a) / hz / n * 1e6; else print "-" }')
  stop_server

  out="$work/$t.open.out"
  start "$t" "$out"
  c0=$(cpu_ticks "$server")
  open[$t]=$("$work/load" -url "$url" -rate "$RATE" -duration "$OPEN_DURATION" -out "$out" -wait "$DRAIN_WAIT")
  c1=$(cpu_ticks "$server")
  started=$(sed -n 's/.* started=\([0-9]*\).*/\1/p' <<<"${open[$t]}")
  open[$t]+=$(awk -v a="$c0" -v b="$c1" -v n="$started" -v hz="$hz" 'BEGIN { if (n > 0) printf " cpu_us_per_started=%.0f", (b - a) / hz / n * 1e6 }')
  stop_server
  echo "$t: wrk ${cps[$t]} commands/s, ${cpu[$t]} us cpu/command; open loop: ${open[$t]}" >&2
done

echo
echo "wrk -t2 -c32 $WRK_DURATION, then open loop $RATE requests/s for $OPEN_DURATION; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-11s %11s %14s   %s\n' target commands/s "cpu us/cmd" "open loop (send-to-start)"
for t in "${targets[@]}"; do
  printf '%-11s %11s %14s   %s\n' "$t" "${cps[$t]}" "${cpu[$t]}" "${open[$t]}"
done
ref=""
[[ -n ${cps[forkhook]:-} ]] && ref=forkhook
[[ -n ${cps[webhook]:-} ]] && ref=webhook
if [[ -n $ref ]]; then
  for t in durablehook promisehook sequential parallel; do
    [[ -n ${cps[$t]:-} ]] || continue
    awk -v t="$t" -v r="$ref" -v a="${cps[$t]}" -v b="${cps[$ref]}" 'BEGIN { printf "ratio %s/%s: %.2f\n", t, r, a / b }'
  done
  [[ -n ${cps[durablehook]:-} && -n ${cps[parallel]:-} ]] &&
    awk -v a="${cps[parallel]}" -v b="${cps[durablehook]}" 'BEGIN { printf "ratio parallel/durablehook: %.2f\n", a / b }'
fi
# promisehook against forkhook even when adnanh/webhook is the reference:
# both are the same code but for the promises.
[[ $ref != forkhook && -n ${cps[promisehook]:-} && -n ${cps[forkhook]:-} ]] &&
  awk -v a="${cps[promisehook]}" -v b="${cps[forkhook]}" 'BEGIN { printf "ratio promisehook/forkhook: %.2f\n", a / b }'
[[ -n ${cps[promisehook]:-} && -n ${cps[parallel]:-} ]] &&
  awk -v a="${cps[parallel]}" -v b="${cps[promisehook]}" 'BEGIN { printf "ratio parallel/promisehook: %.2f\n", a / b }'
"$work/load" -floor "$work/tiny" -out "$work/floor.out" -floor-n "${FLOOR_N:-1000}"
if wanted sequential || wanted parallel; then
  # The floor again while Rulebook takes RATE events/s (none action), as it
  # must while it runs the open loop's commands: what is left of the
  # machine for commands run one after the other. The events arrive for as
  # long as that floor takes (FLOOR_N commands, twice), however short
  # OPEN_DURATION is: the loader is stopped after it.
  start intake "$work/intake.out"
  "$work/load" -url "$url" -rate "$RATE" -duration 10m -out "$work/intake.out" -wait 0s >/dev/null &
  loader=$!
  sleep 1
  floor=$("$work/load" -floor "$work/tiny" -out "$work/floor.out" -floor-n "${FLOOR_N:-1000}" -floor-fsync=false)
  kill -0 "$loader" 2>/dev/null || { echo "actions.sh: the intake load ended before the floor under it did" >&2; exit 1; }
  kill "$loader"
  wait "$loader" 2>/dev/null || true
  loader=""
  sed "s/^floor/floor under $RATE events\/s of intake:/" <<<"$floor"
  stop_server
fi
