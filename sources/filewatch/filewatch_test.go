package filewatch

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/internal/sourcetest"
)

// TestFileWatch watches a real directory tree through inotify; waits poll
// with a deadline.
func TestFileWatch(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	src, err := Spec().New(engine.SourceConfig{Name: "w", Type: Type, Clock: engine.SystemClock{},
		Args: map[string]any{"path": dir, "recursive": true, "ignore_regexes": []any{`\.swp$`}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	out := make(sourcetest.Events, 100)
	done := make(chan error, 1)
	go func() { done <- src.Run(runCtx, out) }()
	// The watch is set up when a probe file's creation is seen.
	probe := filepath.Join(dir, "probe")
	var first engine.Event
	for first == nil {
		os.WriteFile(probe, nil, 0o644)
		select {
		case ev := <-out:
			first = ev
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("the watch never started")
		}
	}
	drain := func() {
		for {
			select {
			case <-out:
			case <-time.After(100 * time.Millisecond):
				return
			}
		}
	}
	drain()
	want := func(change, path, typ string) {
		t.Helper()
		for {
			select {
			case ev := <-out:
				if ev["change"] == change && ev["src_path"] == path {
					if ev["type"] != typ || ev["root_path"] != dir {
						t.Fatalf("event %v, want type %s root %s", ev, typ, dir)
					}
					return
				}
			case <-ctx.Done():
				t.Fatalf("no %s event for %s", change, path)
			}
		}
	}
	f := filepath.Join(dir, "sub", "a.txt")
	os.WriteFile(f+".swp", []byte("x"), 0o644) // ignored
	os.WriteFile(f, []byte("x"), 0o644)
	want("created", f, "FileCreatedEvent")
	os.WriteFile(f, []byte("xy"), 0o644)
	want("modified", f, "FileModifiedEvent")
	nd := filepath.Join(dir, "sub", "new")
	os.Mkdir(nd, 0o755)
	want("created", nd, "DirCreatedEvent")
	// The new directory is watched too (recursive).
	g := filepath.Join(nd, "b")
	deadline := time.Now().Add(5 * time.Second)
	for {
		os.WriteFile(g, nil, 0o644)
		select {
		case ev := <-out:
			if ev["src_path"] == g {
				goto seen
			}
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("a directory created later is not watched")
		}
	}
seen:
	os.Rename(f, f+".old")
	want("moved", f, "FileMovedEvent")
	os.Remove(f + ".old")
	want("deleted", f+".old", "FileDeletedEvent")
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The probe was created before or after the watch began.
	if first["src_path"] != probe {
		t.Errorf("probe event %v", first)
	}
	for _, bad := range []map[string]any{{}, {"path": dir, "recursive": "yes"}, {"path": dir, "ignore_regexes": []any{"("}},
		// Not a string: it must not become the empty pattern, which would
		// match (ignore) every path.
		{"path": dir, "ignore_regexes": []any{1}}} {
		if _, err := parse(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
