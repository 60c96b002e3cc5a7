#!/usr/bin/env bash
# The one test command (the README's, and what CI runs): installs the real
# components the tests need, then runs every Go test with the race detector
# and every example rulebook's test file. Needs root for apt-get on a new
# machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

./test/setup.sh

echo "== go mod tidy -diff"
# go.mod and go.sum must be exactly what tidy would write: a direct
# dependency marked // indirect, or a stale sum, fails here.
go mod tidy -diff

echo "== gofmt"
unformatted="$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))"
if [ -n "$unformatted" ]; then
	echo "not gofmt'ed:" >&2
	echo "$unformatted" >&2
	exit 1
fi

echo "== go vet"
go vet ./...
# The first-party source plugin is its own module, as a plugin author's is.
(cd cmd/rulebook-source-jsonl && go vet ./...)

echo "== staticcheck"
# Pinned here rather than in go.mod so the module's dependencies stay the
# module's; go run fetches it once into the module cache.
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

echo "== go test -race"
go test -race -count=1 -timeout 25m ./...

echo "== rulebook test rulebooks/examples"
go run ./cmd/rulebook test rulebooks/examples/*.test.yml
