package filesrc

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
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
