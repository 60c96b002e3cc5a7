#!/usr/bin/env bash
# EDA compatibility over a directory of Event-Driven Ansible rulebooks (such
# as ansible-rulebook's tests/examples, fetched outside this repository:
# they are another project's files and are not committed here).
#
#   bench/eda-corpus.sh [-S SOURCE_DIR] [-a ARGS_FILE] [-e EXPECT_FILE] [-b RULEBOOK_BIN] DIR
#
# For each DIR/*.yml it runs `rulebook validate` and prints one line:
#   loads        the rulebook loads unmodified
#   awx          it loads but calls AWX (run_job_template/run_workflow_template):
#                running it needs a controller, so it is counted apart
#   FAILS        it does not load; the first error follows
# then the totals and the share that loads.
#
# With -e, EXPECT_FILE lists rulebooks to run, one a line:
#   FILE.yml RULE|RULE|...      (the rules expected to fire, in order)
# A line may end with `-- ARGS` passed to `rulebook run` (e.g. --vars v.yml,
# resolved in DIR). Each is run with a temporary --data-dir until its sources
# end (30 s at most) and the rules fired (the "rule fired" log lines) are
# compared with the expectation: "fired as expected" or "MISMATCH got ...".
# -S is passed to both validate and run (EDA test sources such as nested.py).
# -a ARGS_FILE gives extra arguments per rulebook, one a line, for both
# validate and run: `FILE.yml --vars v.yml` (what ansible-rulebook's tests
# pass the example: variables, --env-vars).
set -euo pipefail

bin="" srcdir="" expect="" argsfile=""
while getopts "S:a:e:b:" o; do
	case $o in
	S) srcdir=$(cd "$OPTARG" && pwd) ;;
	a) argsfile=$(cd "$(dirname "$OPTARG")" && pwd)/$(basename "$OPTARG") ;;
	e) expect=$(cd "$(dirname "$OPTARG")" && pwd)/$(basename "$OPTARG") ;;
	b) bin=$OPTARG ;;
	*) echo "usage: $0 [-S SOURCE_DIR] [-a ARGS_FILE] [-e EXPECT_FILE] [-b RULEBOOK_BIN] DIR" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || { echo "usage: $0 [-S SOURCE_DIR] [-a ARGS_FILE] [-e EXPECT_FILE] [-b RULEBOOK_BIN] DIR" >&2; exit 2; }
dir=$1
if [ -z "$bin" ]; then
	bin=$(mktemp -d)/rulebook
	(cd "$(dirname "$0")/.." && go build -o "$bin" ./cmd/rulebook)
fi
sflag=()
[ -n "$srcdir" ] && sflag=(-S "$srcdir")

# fileargs FILE: the extra arguments ARGS_FILE gives FILE, one a line.
fileargs() {
	[ -n "$argsfile" ] || return 0
	awk -v f="$1" '$1 == f { for (i = 2; i <= NF; i++) print $i }' "$argsfile"
}

cd "$dir"
total=0 loads=0 awx=0 fails=0
printf '%-45s %-6s %s\n' FILE STATUS REASON
for f in *.yml; do
	total=$((total + 1))
	mapfile -t extra < <(fileargs "$f")
	if out=$("$bin" validate "${sflag[@]}" "${extra[@]}" "$f" 2>&1); then
		if grep -qE '^\s*(ansible\.eda\.)?run_(job|workflow)_template:' "$f"; then
			awx=$((awx + 1)); printf '%-45s %-6s\n' "$f" awx
		else
			loads=$((loads + 1)); printf '%-45s %-6s\n' "$f" loads
		fi
	else
		fails=$((fails + 1))
		reason=$(printf '%s\n' "$out" | head -1 | sed -E 's/^[^ ]+:[0-9]+:[0-9]+: //')
		printf '%-45s %-6s %s\n' "$f" FAILS "$reason"
	fi
done
echo
noawx=$((total - awx))
echo "total $total: loads $loads, awx $awx (load, need a controller to run), fails $fails"
[ $noawx -gt 0 ] && echo "without AWX: $loads/$noawx load unmodified ($((100 * loads / noawx))%)"

[ -n "$expect" ] || exit 0
echo
printf '%-45s %s\n' FILE RUN
ran=0 good=0
while read -r line; do
	case $line in '' | '#'*) continue ;; esac
	args=()
	if [[ $line == *" -- "* ]]; then
		read -r -a args <<<"${line#* -- }"
		line=${line%% -- *}
	fi
	read -r f want <<<"$line"
	ran=$((ran + 1))
	mapfile -t extra < <(fileargs "$f")
	args+=("${extra[@]}")
	data=$(mktemp -d)
	got=$(timeout 30 "$bin" run --data-dir "$data" "${sflag[@]}" "${args[@]}" "$f" 2>&1 >/dev/null |
		jq -r 'select(.message? == "rule fired") | .rule' 2>/dev/null | tr '\n' '|' | sed 's/|$//') || true
	rm -rf "$data"
	if [ "$got" == "$want" ]; then
		good=$((good + 1)); printf '%-45s %s\n' "$f" "fired as expected"
	else
		printf '%-45s MISMATCH got [%s] want [%s]\n' "$f" "$got" "$want"
	fi
done <"$expect"
echo
echo "run: $good/$ran fired as expected"
