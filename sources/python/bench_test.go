package python

import (
	"context"
	"os/exec"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
)

type discard struct{ n int }

func (d *discard) Emit(_ context.Context, _ engine.SourceRef, entries []engine.Entry) ([]engine.Outcome, error) {
	d.n += len(entries)
	return make([]engine.Outcome, len(entries)), nil
}

// BenchmarkPluginEvents measures events from a plugin through the runner,
// the pipe and the decoding to an emitter that keeps nothing (one process
// start per run of the benchmark, amortised over b.N events).
//
//	go test -run - -bench PluginEvents -benchtime 200000x ./sources/python
func BenchmarkPluginEvents(b *testing.B) {
	if _, err := exec.LookPath(DefaultPython); err != nil {
		b.Skip("python3 is not installed")
	}
	path := writePlugin(b, b.TempDir(), "range", rangePlugin)
	src := New(Config{Name: "range", Path: path, Args: map[string]any{"limit": b.N}, Log: zerolog.Nop()})
	out := &discard{}
	b.ResetTimer()
	if err := src.Run(context.Background(), out); err != nil {
		b.Fatal(err)
	}
	if out.n != b.N {
		b.Fatalf("%d events, want %d", out.n, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
