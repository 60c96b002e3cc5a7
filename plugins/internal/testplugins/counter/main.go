// Command counter is a test source plugin: it emits {"n": i} for i after
// its resume position up to count, with i as the position. With a marker
// path it misbehaves once (the marker does not exist yet): crash_at exits
// right after event crash_at is durable, freeze_at stops the whole process
// (SIGSTOP) there, as a wedged runtime would look.
package main

import (
	"context"
	"os"
	"strconv"
	"syscall"

	"github.com/rulebook-dev/rulebook/plugins/sdk"
)

func main() {
	sdk.ServeSource(sdk.SourceInfo{
		Name:    "counter",
		Version: "0.0.1",
		Schema: `{"type":"object","required":["count"],"additionalProperties":false,"properties":{
			"count":{"type":"integer","minimum":1},"crash_at":{"type":"integer"},"freeze_at":{"type":"integer"},"marker":{"type":"string"}}}`,
	}, run)
}

func run(ctx context.Context, args map[string]any, resumeFrom string, emit sdk.EmitFunc) error {
	count := int(args["count"].(float64))
	crashAt, _ := args["crash_at"].(float64)
	freezeAt, _ := args["freeze_at"].(float64)
	marker, _ := args["marker"].(string)
	start := 0
	if resumeFrom != "" {
		start, _ = strconv.Atoi(resumeFrom)
	}
	for i := start + 1; i <= count && ctx.Err() == nil; i++ {
		if err := emit(map[string]any{"n": i}, strconv.Itoa(i)); err != nil {
			return nil
		}
		if marker != "" && (i == int(crashAt) || i == int(freezeAt)) {
			if _, err := os.Stat(marker); err != nil {
				_ = os.WriteFile(marker, nil, 0o600)
				if i == int(crashAt) {
					os.Exit(3)
				}
				_ = syscall.Kill(os.Getpid(), syscall.SIGSTOP)
			}
		}
	}
	<-ctx.Done()
	return nil
}
