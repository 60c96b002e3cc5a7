# The one test command: installs the real components the tests need, then runs
# every test with the race detector, then every example rulebook's test file.
GO ?= go

.PHONY: test build quickstart
build:
	$(GO) build -o bin/rulebook ./cmd/rulebook

test:
	./test/setup.sh
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...
	$(GO) run ./cmd/rulebook test rulebooks/examples/*.test.yml

quickstart:
	$(GO) run ./cmd/rulebook run rulebooks/examples/quickstart.yml
