package filesrc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/internal/sourcetest"
)

type recorder struct{ events []engine.Event }

func (r *recorder) Emit(_ context.Context, _ engine.SourceRef, entries []engine.Entry) ([]engine.Outcome, error) {
	for _, e := range entries {
		r.events = append(r.events, e.Event)
	}
	return make([]engine.Outcome, len(entries)), nil
}

func TestFileReadsNDJSONAndReportsBadLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.ndjson")
	os.WriteFile(path, []byte("{\"a\": 1}\n\nnot json\n[1, 2]\n{\"a\": 3}\n"), 0o644)
	var logs bytes.Buffer
	src, err := Spec(nil).New(engine.SourceConfig{Name: "f", Type: "file", Clock: engine.SystemClock{},
		Args: map[string]any{"path": path}, Log: zerolog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	if err := src.Run(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.events) != 3 || rec.events[0]["a"] != 1.0 || rec.events[2]["a"] != 3.0 {
		t.Fatalf("events %v", rec.events)
	}
	if l, ok := rec.events[1]["payload"].([]any); !ok || len(l) != 2 {
		t.Errorf("a non-object line should land under payload: %v", rec.events[1])
	}
	if !strings.Contains(logs.String(), `"line":3`) {
		t.Errorf("the bad line was not reported with its number: %s", logs.String())
	}
}

func TestFileFromStdinAndMissingFile(t *testing.T) {
	src, _ := Spec(strings.NewReader("{\"x\": true}\n")).New(engine.SourceConfig{Name: "in", Type: "file", Clock: engine.SystemClock{}, Args: map[string]any{"path": "-"}})
	rec := &recorder{}
	if err := src.Run(context.Background(), rec); err != nil || len(rec.events) != 1 || rec.events[0]["x"] != true {
		t.Fatalf("stdin: %v %v", err, rec.events)
	}
	missing, _ := Spec(nil).New(engine.SourceConfig{Name: "m", Type: "file", Clock: engine.SystemClock{}, Args: map[string]any{"path": "/nonexistent/x"}})
	if err := missing.Run(context.Background(), rec); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("missing file: %v", err)
	}
	if err := Spec(nil).Check(map[string]any{}); err == nil || !strings.Contains(err.Error(), `missing key "path"`) {
		t.Fatalf("Check: %v", err)
	}
}

// keyed is an Emitter that keeps the journal's dedupe semantics (a key
// seen before is a Duplicate) and records the size of every call.
type keyed struct {
	mu     sync.Mutex
	seen   map[string]bool
	calls  []int
	events []engine.Event
}

func (k *keyed) Emit(_ context.Context, _ engine.SourceRef, entries []engine.Entry) ([]engine.Outcome, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.seen == nil {
		k.seen = map[string]bool{}
	}
	k.calls = append(k.calls, len(entries))
	out := make([]engine.Outcome, len(entries))
	for i, e := range entries {
		if e.DedupeKey != "" && k.seen[e.DedupeKey] {
			out[i] = engine.Duplicate
			continue
		}
		k.seen[e.DedupeKey] = true
		k.events = append(k.events, e.Event)
	}
	return out, nil
}

func (k *keyed) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.events)
}

func runFile(t *testing.T, path string, out engine.Emitter) string {
	t.Helper()
	var logs bytes.Buffer
	src, err := Spec(nil).New(engine.SourceConfig{Name: "f", Type: "file", Clock: engine.SystemClock{},
		Args: map[string]any{"path": path}, Log: zerolog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Run(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	return logs.String()
}

func TestFileEmitsInBatches(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.ndjson")
	var b strings.Builder
	for i := 0; i < 1200; i++ {
		fmt.Fprintf(&b, "{\"i\": %d}\n", i)
	}
	// One line longer than the read buffer, at the end without a newline.
	fmt.Fprintf(&b, "{\"long\": %q}", strings.Repeat("x", 200<<10))
	os.WriteFile(path, []byte(b.String()), 0o644)
	rec := &keyed{}
	runFile(t, path, rec)
	if len(rec.events) != 1201 || rec.events[1199]["i"] != 1199.0 || len(rec.events[1200]["long"].(string)) != 200<<10 {
		t.Fatalf("%d events", len(rec.events))
	}
	for i := 0; i < 1200; i++ {
		if rec.events[i]["i"] != float64(i) {
			t.Fatalf("event %d is line %v: out of order", i, rec.events[i]["i"])
		}
	}
	// 1201 events in a few calls of at most maxBatch, not one call each.
	if len(rec.calls) > 10 {
		t.Errorf("%d Emit calls for 1201 lines: %v", len(rec.calls), rec.calls)
	}
	for _, n := range rec.calls {
		if n > maxBatch {
			t.Errorf("a call of %d entries, more than %d", n, maxBatch)
		}
	}
}

// A line from a pipe is emitted once it is complete, not held back for the
// next one to fill a batch.
func TestFileDoesNotHoldALineForTheBatch(t *testing.T) {
	r, w := io.Pipe()
	src, _ := Spec(r).New(engine.SourceConfig{Name: "in", Type: "file", Clock: engine.SystemClock{}, Args: map[string]any{"path": "-"}})
	rec := &keyed{}
	done := make(chan error, 1)
	go func() { done <- src.Run(context.Background(), rec) }()
	w.Write([]byte("{\"a\": 1}\n{\"a\": 2}\n{\"a\""))
	sourcetest.WaitFor(t, "the 2 complete lines (held back behind the partial one?)", func() bool { return rec.count() >= 2 })
	w.Write([]byte(": 3}\n"))
	w.Close()
	var err error
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after the pipe closed")
	}
	if err != nil || rec.count() != 3 {
		t.Fatalf("%v, %d events", err, rec.count())
	}
	if rec.calls[0] != 2 {
		t.Errorf("calls %v", rec.calls)
	}
}

// A file read again (a restart) resumes: lines accepted before are
// Duplicates; appended lines, and a line whose content changed, are new.
func TestFileResumes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.ndjson")
	os.WriteFile(path, []byte("{\"a\": 1}\n{\"a\": 2}\n"), 0o644)
	rec := &keyed{}
	runFile(t, path, rec)
	os.WriteFile(path, []byte("{\"a\": 1}\n{\"a\": 9}\n{\"a\": 3}\n"), 0o644)
	logs := runFile(t, path, rec)
	var got []any
	for _, e := range rec.events {
		got = append(got, e["a"])
	}
	if fmt.Sprint(got) != "[1 2 9 3]" {
		t.Fatalf("events %v, want [1 2 9 3]", got)
	}
	if !strings.Contains(logs, `"skipped":1`) || !strings.Contains(logs, `"accepted":2`) {
		t.Errorf("the resume is not logged: %s", logs)
	}
	// Standard input carries no keys: what is piped is new.
	in, _ := Spec(strings.NewReader("{\"a\": 1}\n")).New(engine.SourceConfig{Name: "f", Type: "file", Clock: engine.SystemClock{}, Args: map[string]any{"path": "-"}})
	in.Run(context.Background(), rec)
	if len(rec.events) != 5 {
		t.Errorf("stdin lines were deduplicated: %d events", len(rec.events))
	}
}

type failing struct{ calls int }

func (f *failing) Emit(context.Context, engine.SourceRef, []engine.Entry) ([]engine.Outcome, error) {
	f.calls++
	return nil, errors.New("disk full")
}

// A storage failure ends the run with its error, and nothing more is
// emitted after it.
func TestFileStopsOnEmitError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.ndjson")
	os.WriteFile(path, []byte(strings.Repeat("{\"a\": 1}\n", 3000)), 0o644)
	src, _ := Spec(nil).New(engine.SourceConfig{Name: "f", Type: "file", Clock: engine.SystemClock{}, Args: map[string]any{"path": path}})
	f := &failing{}
	if err := src.Run(context.Background(), f); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Run: %v", err)
	}
	if f.calls != 1 {
		t.Errorf("%d Emit calls after a failure", f.calls)
	}
}

// paced logs Pace and Emit calls.
type paced struct{ calls []string }

func (p *paced) Pace(_ context.Context, n int) error {
	p.calls = append(p.calls, fmt.Sprintf("pace %d", n))
	return nil
}

func (p *paced) Emit(_ context.Context, _ engine.SourceRef, entries []engine.Entry) ([]engine.Outcome, error) {
	p.calls = append(p.calls, fmt.Sprintf("emit %d", len(entries)))
	return make([]engine.Outcome, len(entries)), nil
}

// The file source is paced (engine.Pacer) before each batch, so it does
// not run ahead of the engine.
func TestFileIsPaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.ndjson")
	os.WriteFile(path, []byte(strings.Repeat("{\"a\": 1}\n", maxBatch+10)), 0o644)
	p := &paced{}
	runFile(t, path, p)
	want := fmt.Sprintf("[pace %d emit %d pace 10 emit 10]", maxBatch, maxBatch)
	if fmt.Sprint(p.calls) != want {
		t.Fatalf("calls %v, want %s", p.calls, want)
	}
}
