#!/usr/bin/env bash
# bench/actions/seqtrace.sh: where the time of one sequential run_command
# goes (issue 17). `rulebook run` with execution_strategy: sequential takes
# RATE (800) events/s, more than it runs, so the next command always waits;
# while the backlog lasts, `perf record` takes kernel tracepoints of the
# whole machine for TRACE (2) seconds: the program's exec and exit, the
# supervisor daemon's waitid, writev (its exit frame to the engine), pwrite
# (its record slot) and clone, and the engine's writev (the next start
# request). Each cycle from one program's exit to the next one's is split
# into its steps, printed with their p50, mean and p90:
#
#   exit->waitid      the daemon's waitid returns (the kernel ends the
#                     process and wakes the waiting thread)
#   waitid->dwritev   the daemon records the exit and sends the exit frame
#   dwritev->ewritev  the engine: reads the frame, records the result,
#                     takes the next invocation, records it running, sends
#                     its start request
#   ewritev->pending  the daemon reads the request, writes the record slot
#   pending->clone    the daemon prepares the fork
#   clone->exec       fork and exec
#   exec->exit        the program itself
#
# A cycle is counted only when every step is seen in order. Tracing adds a
# little to each step (about 0.5 ms a cycle here). Needs perf (Debian:
# apt-get install linux-perf), root, cc, python3 and Go.
#
#   bench/actions/seqtrace.sh
#   RATE=600 TRACE=3 bench/actions/seqtrace.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
RATE=${RATE:-800}
TRACE=${TRACE:-2}
PORT=${PORT:-18093}
command -v perf >/dev/null || { echo "seqtrace.sh: perf is missing (apt-get install linux-perf)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/rulebook-seqtrace.XXXXXX")
server=""
trap '[[ -z $server ]] || kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

cc -O2 -o "$work/tiny" "$repo/bench/actions/tiny/tiny.c"
(cd "$repo" && go build -o "$work/load" ./bench/actions/load && go build -o "$work/rulebook" ./cmd/rulebook &&
  go build -o "$work/rulebook-supervise" ./cmd/rulebook-supervise)
sed -e "s|PORT|$PORT|" -e "s|STRATEGY|sequential|" -e "s|PROG|$work/tiny|" -e "s|OUT|$work/out|" \
  "$repo/bench/actions.yml" >"$work/actions.yml"
"$work/rulebook" run "$work/actions.yml" --data-dir "$work/data" >"$work/rulebook.log" 2>&1 &
server=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
"$work/load" -url "http://127.0.0.1:$PORT/" -rate "$RATE" -duration $((TRACE + 4))s -out "$work/out" -wait 60s >"$work/load.txt" &
loader=$!
sleep 2
perf record -a -o "$work/trace.data" \
  -e sched:sched_process_exec -e sched:sched_process_exit \
  -e syscalls:sys_exit_waitid -e syscalls:sys_enter_writev \
  -e syscalls:sys_enter_pwrite64 -e syscalls:sys_enter_clone -- sleep "$TRACE" >/dev/null 2>&1
wait "$loader"
kill "$server"
wait "$server" 2>/dev/null || true
server=""
echo "load: $(cat "$work/load.txt")"
perf script -i "$work/trace.data" -F comm,pid,time,event,trace 2>/dev/null >"$work/trace.txt"
python3 - "$work/trace.txt" <<'EOF'
import re, statistics, sys
steps = ["exit", "waitid", "dwritev", "ewritev", "pending", "clone", "exec", "exit"]
events = []
for line in open(sys.argv[1]):
    m = re.match(r"\s*(\S+)\s+(\d+)\s+([\d.]+):\s+(\S+):\s*(.*)", line)
    if m:
        comm, pid, t, ev, tr = m.groups()
        events.append((float(t) * 1000, comm, int(pid), ev, tr))
daemon = {p for _, c, p, _, _ in events if c.startswith("rulebook-superv")}
engine = {p for _, c, p, _, _ in events if c == "rulebook"}
cycles, cur = [], None
for t, comm, pid, ev, tr in events:
    if ev == "sched:sched_process_exit" and comm == "tiny":
        if cur is not None and len(cur) == len(steps) - 1:
            cur.append(t)
            cycles.append(cur)
        cur = [t]
        continue
    if cur is None:
        continue
    want = steps[len(cur)] if len(cur) < len(steps) - 1 else None
    if (want == "waitid" and ev == "syscalls:sys_exit_waitid" and pid in daemon or
            want == "dwritev" and ev == "syscalls:sys_enter_writev" and pid in daemon or
            want == "ewritev" and ev == "syscalls:sys_enter_writev" and pid in engine or
            want == "pending" and ev == "syscalls:sys_enter_pwrite64" and pid in daemon and "pos: 0x00000000" in tr or
            want == "clone" and ev == "syscalls:sys_enter_clone" and pid in daemon or
            want == "exec" and ev == "sched:sched_process_exec" and comm == "tiny"):
        cur.append(t)
if not cycles:
    sys.exit("seqtrace.sh: no complete cycle traced (is the backlog there? see load:)")
print(f"{len(cycles)} cycles traced")
for i in range(len(steps) - 1):
    d = sorted(c[i + 1] - c[i] for c in cycles)
    print(f"{steps[i] + '->' + steps[i + 1]:18s} p50 {d[len(d) // 2]:.3f} ms  mean {statistics.mean(d):.3f}  p90 {d[len(d) * 9 // 10]:.3f}")
d = sorted(c[-1] - c[0] for c in cycles)
print(f"{'cycle':18s} p50 {d[len(d) // 2]:.3f} ms  mean {statistics.mean(d):.3f}  p90 {d[len(d) * 9 // 10]:.3f}")
EOF
