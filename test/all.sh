#!/usr/bin/env bash
# The one test command (the README's, and what CI runs): installs the real
# components the tests need, then runs every Go test with the race detector
# and every example rulebook's test file. Needs root for apt-get on a new
# machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

./test/setup.sh

echo "== go vet"
go vet ./...
# The first-party source plugin is its own module, as a plugin author's is.
(cd cmd/rulebook-source-jsonl && go vet ./...)

echo "== go test -race"
go test -race -count=1 -timeout 25m ./...

echo "== rulebook test rulebooks/examples"
go run ./cmd/rulebook test rulebooks/examples/*.test.yml
