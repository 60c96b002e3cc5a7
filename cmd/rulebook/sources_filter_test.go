package main

import (
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/internal/sourcetest"
	"github.com/rulebook-dev/rulebook/sources/generic"
)

// The source set runs a source's events through its filters before they
// reach the journal.
func TestSourceSetAppliesFilters(t *testing.T) {
	reg := engine.NewRegistry()
	reg.RegisterSource(generic.Spec())
	out := make(sourcetest.Events, 4)
	set := newSourceSet(reg, out, engine.SystemClock{}, zerolog.Nop())
	cfg := engine.SourceConfig{Name: "g", Type: "generic", Ruleset: "rs",
		Args: map[string]any{"payload": []any{map[string]any{"alerts": []any{map[string]any{"host": "a"}, map[string]any{"host": "b"}}}}},
		Filters: []engine.FilterConfig{
			{Name: "event_splitter", Args: map[string]any{"splitter_key": "alerts"}},
			{Name: "insert_hosts_to_meta", Args: map[string]any{"host_path": "host"}},
		}}
	if err := set.startMissing(map[string]engine.SourceConfig{sourceKey(cfg): cfg}); err != nil {
		t.Fatal(err)
	}
	defer set.stopAll()
	for _, want := range []string{"a", "b"} {
		select {
		case ev := <-out:
			if hs := engine.EventHosts(ev); len(hs) != 1 || hs[0] != want || ev["host"] != want {
				t.Fatalf("event %v: want host %q in meta.hosts", ev, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
		}
	}
}
