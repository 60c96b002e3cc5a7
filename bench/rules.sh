#!/usr/bin/env bash
# End-to-end throughput of `rulebook run` with large generated rulebooks and
# bulk input (issue 17): the `file` source reads N NDJSON events
#   {"alertname":"A<k>","host":"h<k>","cpu":<0-99>,"i":<n>}
# (k uniform over 0..9999, fixed seed), every rule has the `none` action, and
# every run starts on a fresh data dir (durable journal, fsync'd). The run
# ends by itself once the file is consumed and processed ("all sources
# ended"), so the wall time of the process is the figure.
#
# For each rulebook it prints:
#   load_s     wall time of a run whose input is empty (start, compile, open
#              the journal, shut down): the load of the rulebook
#   load_mb    max RSS of that run
#   run_s      wall time of the run over the N events
#   events/s   N / (run_s - load_s)
#   cpu_us/ev  (user+sys of the run - user+sys of the empty run) / N: the
#              CPU the events cost, which a loaded machine hardly changes
#   rss_mb     max RSS of the run (/usr/bin/time -v)
#
# Rulebooks (RULEBOOKS picks some, comma separated):
#   eq10       10 rules     event.alertname == "A<i>"
#   eq1000     1,000 rules  event.alertname == "A<i>"
#   eq10000    10,000 rules event.alertname == "A<i>"
#   hostcpu    10,000 rules event.host == "h<i>" && event.cpu > 90
#   noindex    NOINDEX rules (default 1,000) lower(event.alertname) == "a<i>":
#              no test an index could use (a function of the field)
#   bulk       10 rules as eq10, over BULK events (default 200,000): the
#              target of "bulk sources at engine speed"
#
#   bench/rules.sh                       # all, N=20000, 1 round
#   RULEBOOKS=bulk ROUNDS=3 bench/rules.sh
#   RULEBOOKS=eq10,eq10000 N=20000 bench/rules.sh
#   RULEBOOK=/path/to/binary bench/rules.sh   # measure another build
#
# The 10,000-rule rulebooks take minutes without a rule index; on a shared
# machine prefer RULEBOOKS=eq10,eq1000,noindex,bulk.
#
# Results go to stdout and to bench/results/rules-<time>.txt (not committed).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}
BULK=${BULK:-200000}
NOINDEX=${NOINDEX:-1000}
ROUNDS=${ROUNDS:-1}
RULEBOOKS=${RULEBOOKS:-eq10,eq1000,eq10000,hostcpu,noindex,bulk}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ -n "${RULEBOOK:-}" ]; then cp "$RULEBOOK" "$work/rulebook"; else go build -o "$work/rulebook" ./cmd/rulebook; fi

# events N FILE: the NDJSON input, the same for a given N.
events() {
  awk -v n="$1" 'BEGIN { srand(17); for (i = 0; i < n; i++) {
    k = int(rand() * 10000); c = int(rand() * 100)
    printf "{\"alertname\":\"A%d\",\"host\":\"h%d\",\"cpu\":%d,\"i\":%d}\n", k, k, c, i } }' >"$2"
}

# rulebook KIND COUNT INPUT FILE
rulebook() {
  awk -v kind="$1" -v n="$2" -v input="$3" 'BEGIN {
    print "- name: bench"
    print "  hosts: all"
    print "  sources:"
    print "    - name: input"
    print "      file:"
    printf "        path: %s\n", input
    print "  rules:"
    for (i = 0; i < n; i++) {
      printf "    - name: r%d\n", i
      if (kind == "eq") printf "      condition: event.alertname == \"A%d\"\n", i
      else if (kind == "hostcpu") printf "      condition: event.host == \"h%d\" && event.cpu > 90\n", i
      else printf "      condition: lower(event.alertname) == \"a%d\"\n", i
      print "      action:"
      print "        none: {}"
    }
  }' >"$4"
}

# expected KIND COUNT INPUT: how many events some rule matches.
expected() {
  awk -F'[":,}]+' -v kind="$1" -v n="$2" '{
    k = substr($3, 2) + 0; c = $7 + 0
    if (k < n && (kind != "hostcpu" || c > 90)) m++ } END { print m + 0 }' "$3"
}

# measure RULEBOOK DATADIR → "wall user sys maxrss_kb"
measure() {
  rm -rf "$2"
  /usr/bin/time -f '%e %U %S %M' -o "$work/time" \
    "$work/rulebook" run "$1" --data-dir "$2" --log-level warn --log-format json >"$work/out" 2>"$work/err" ||
    { echo "rulebook run $1 failed:" >&2; tail -20 "$work/err" >&2; exit 1; }
  tail -1 "$work/time"
}

: >"$work/empty.ndjson"
mkdir -p bench/results
res="bench/results/rules-$(date -u +%Y%m%dT%H%M%SZ).txt"
{
  echo "# bench/rules.sh $(date -u +'%F %T') UTC, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(go version | cut -d' ' -f3), N=$N BULK=$BULK"
  printf '%-9s %7s %7s %7s %8s %9s %10s %7s\n' rulebook events load_s load_mb run_s events/s cpu_us/ev rss_mb
} | tee "$res"

IFS=, read -ra kinds <<<"$RULEBOOKS"
for name in "${kinds[@]}"; do
  n=$N
  case $name in
  eq10) kind=eq count=10 ;;
  eq1000) kind=eq count=1000 ;;
  eq10000) kind=eq count=10000 ;;
  hostcpu) kind=hostcpu count=10000 ;;
  noindex) kind=noindex count=$NOINDEX ;;
  bulk) kind=eq count=10 n=$BULK ;;
  *) echo "unknown rulebook $name" >&2; exit 2 ;;
  esac
  [ -f "$work/in-$n.ndjson" ] || events "$n" "$work/in-$n.ndjson"
  rulebook "$kind" "$count" "$work/empty.ndjson" "$work/$name-empty.yml"
  rulebook "$kind" "$count" "$work/in-$n.ndjson" "$work/$name.yml"
  for _ in $(seq "$ROUNDS"); do
    read -r ew eu es erss <<<"$(measure "$work/$name-empty.yml" "$work/data")"
    read -r w u s rss <<<"$(measure "$work/$name.yml" "$work/data")"
    # Every event was processed: the firings in the audit trail are
    # exactly the events some rule matches.
    got=$("$work/rulebook" audit --data-dir "$work/data" --limit 0 --format json | wc -l)
    want=$(expected "$kind" "$count" "$work/in-$n.ndjson")
    [ "$got" -eq "$want" ] || { echo "$name: $got firings, want $want" >&2; exit 1; }
    awk -v name="$name" -v n="$n" -v ew="$ew" -v eu="$eu" -v es="$es" -v erss="$erss" -v w="$w" -v u="$u" -v s="$s" -v rss="$rss" 'BEGIN {
      d = w - ew; if (d <= 0) d = 0.001
      printf "%-9s %7d %7.2f %7.0f %8.2f %9.0f %10.1f %7.0f\n", name, n, ew, erss / 1024, w, n / d, ((u + s) - (eu + es)) * 1e6 / n, rss / 1024 }' | tee -a "$res"
  done
done
echo "written to $res"
