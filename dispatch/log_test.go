package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
)

// syncBuffer is a bytes.Buffer safe for the dispatcher's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAttemptFinishedLog checks the "attempt finished" line: an error field
// only when the attempt failed (not an empty error= on every success), and
// the duration named with its unit.
func TestAttemptFinishedLog(t *testing.T) {
	for _, tc := range []struct {
		name      string
		result    engine.Result
		wantError string // "" means: no error field at all
	}{
		{"success has no error field", engine.Success("ok"), ""},
		{"failure names the error", engine.Failure("400 bad request"), "400 bad request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf syncBuffer
			store, clock := newMemStore(), newFakeClock()
			d, err := New(Config{
				Store:   store,
				Clock:   clock,
				Rand:    func() float64 { return 0.5 },
				Actions: ActionMap(map[string]engine.Action{"x": &script{results: []engine.Result{tc.result}}}),
				Log:     zerolog.New(&buf),
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = d.Stop(ctx)
			})
			h := &harness{t: t, store: store, clock: clock, d: d}
			h.submit(newFiring("f", "rs", false, invSpec{action: "x"}))
			h.waitFinal("f/0")
			var line map[string]any
			waitFor(t, "attempt finished line", func() bool {
				for _, l := range strings.Split(buf.String(), "\n") {
					if strings.Contains(l, `"attempt finished"`) {
						return json.Unmarshal([]byte(l), &line) == nil
					}
				}
				return false
			})
			errField, has := line["error"]
			switch {
			case tc.wantError == "" && has:
				t.Errorf("error field %q on a successful attempt: %v", errField, line)
			case tc.wantError != "" && errField != tc.wantError:
				t.Errorf("error field %v, want %q: %v", errField, tc.wantError, line)
			}
			if _, ok := line["duration_ms"].(float64); !ok {
				t.Errorf("no numeric duration_ms field: %v", line)
			}
			if _, ok := line["duration"]; ok {
				t.Errorf("unitless duration field: %v", line)
			}
		})
	}
}
