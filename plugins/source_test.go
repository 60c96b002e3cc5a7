package plugins

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/internal/sourcetest"
)

func sourceDir(t *testing.T, names ...string) string {
	t.Helper()
	return linkedDir(t, SourceFilePrefix, names...)
}

// startCounter starts h and returns the spec of the "counter" source
// plugin it registers.
func startCounter(t *testing.T, h *SourceHost) engine.SourceSpec {
	t.Helper()
	if _, err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return counterSpec(t, h)
}

// counterSpec registers the started h and returns the spec of its
// "counter" source plugin.
func counterSpec(t *testing.T, h *SourceHost) engine.SourceSpec {
	t.Helper()
	reg := engine.NewRegistry()
	if err := h.Register(reg); err != nil {
		t.Fatal(err)
	}
	spec, ok := reg.Source("counter")
	if !ok {
		t.Fatal("source type not registered")
	}
	return spec
}

// A source plugin that crashes, or hangs (stops sending even heartbeats),
// is restarted from the last durable position: every event is journaled
// once, in order, and the restart is counted.
func TestSourcePluginRestarts(t *testing.T) {
	for _, mode := range []string{"crash_at", "freeze_at"} {
		t.Run(mode, func(t *testing.T) {
			h := NewSourceHost(SourceOptions{Dirs: []string{sourceDir(t, "counter")}, Log: zerolog.Nop(),
				Heartbeat: 50 * time.Millisecond, HangAfter: 400 * time.Millisecond,
				Backoff: func(int) time.Duration { return 10 * time.Millisecond }})
			infos, err := h.Start(context.Background())
			if err != nil || len(infos) != 1 || infos[0].Name != "counter" || infos[0].Version != "0.0.1" {
				t.Fatalf("start: %v %+v", err, infos)
			}
			spec := counterSpec(t, h)
			args := map[string]any{"count": 12, mode: 5, "marker": filepath.Join(t.TempDir(), "once")}
			j := sourcetest.OpenJournal(t, t.TempDir())
			defer j.Close()
			stop := sourcetest.Run(t, sourcetest.Build(t, spec, "c", args, engine.SystemClock{}), j)
			sourcetest.WaitFor(t, "12 events", func() bool { return j.LastSeq() >= 12 })
			stop()
			recs, err := j.Read(context.Background(), 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range recs {
				got = append(got, fmt.Sprint(r.Event["n"]))
				if engine.EventID(r.Event) == "" || engine.Meta(r.Event)["source"] == nil {
					t.Errorf("event without the engine's meta: %v", r.Event)
				}
			}
			if strings.Join(got, ",") != "1,2,3,4,5,6,7,8,9,10,11,12" {
				t.Fatalf("journal holds %v", got)
			}
			if n := h.Restarts("counter"); n != 1 {
				t.Fatalf("restarts %d, want 1", n)
			}
			if pos, _ := j.Position(context.Background(), engine.SourceRef{Ruleset: "rs", Name: "c"}); pos != "12" {
				t.Fatalf("stored position %q, want 12", pos)
			}
		})
	}
}

// Arguments are checked against the plugin's schema, with the key's path.
func TestSourcePluginSchemaCheck(t *testing.T) {
	h := NewSourceHost(SourceOptions{Dirs: []string{sourceDir(t, "counter")}, Log: zerolog.Nop()})
	spec := startCounter(t, h)
	err := spec.Check(map[string]any{"count": "many"})
	var ae *engine.ArgError
	if !errors.As(err, &ae) || strings.Join(ae.Path, ".") != "count" {
		t.Fatalf("check: %v, want an ArgError at count", err)
	}
	if err := spec.Check(map[string]any{"count": 1, "colour": "red"}); err == nil {
		t.Fatal("unknown key accepted")
	}
	// A built-in of the same name wins and the clash is reported.
	reg2 := engine.NewRegistry()
	reg2.RegisterSource(engine.SourceSpec{Type: "counter", New: func(engine.SourceConfig) (engine.Source, error) { return nil, nil }})
	if err := h.Register(reg2); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Fatalf("register over a built-in: %v", err)
	}
}

// A declared source plugin whose file does not match its sha256 is refused.
func TestSourcePluginChecksum(t *testing.T) {
	dir := sourceDir(t, "counter")
	h := NewSourceHost(SourceOptions{Declared: []Declared{{Path: filepath.Join(dir, SourceFilePrefix+"counter"), SHA256: strings.Repeat("0", 64)}}, Log: zerolog.Nop()})
	infos, err := h.Start(context.Background())
	if !errors.Is(err, ErrChecksumMismatch) || len(infos) != 1 || !infos[0].Declared {
		t.Fatalf("start: %v %+v", err, infos)
	}
}

// A declared source plugin whose file changes after Start is refused when
// a source runs it: Run returns the mismatch at once, without counting or
// logging a restart it will not make.
func TestSourcePluginChangedAfterStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), SourceFilePrefix+"counter")
	bin, err := os.ReadFile(filepath.Join(binDir, "counter"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	sum, err := FileSHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	h := NewSourceHost(SourceOptions{Declared: []Declared{{Path: path, SHA256: sum}}, Log: zerolog.Nop(),
		Backoff: func(int) time.Duration { return time.Millisecond }})
	src := sourcetest.Build(t, startCounter(t, h), "c", map[string]any{"count": 1}, engine.SystemClock{})
	if err := os.WriteFile(path, append(bin, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	j := sourcetest.OpenJournal(t, t.TempDir())
	defer j.Close()
	if err := src.Run(ctx, j); !errors.Is(err, ErrChecksumMismatch) {
		t.Fatalf("run: %v, want ErrChecksumMismatch", err)
	}
	if n := h.Restarts("counter"); n != 0 {
		t.Fatalf("restarts %d, want 0: the plugin was not started again", n)
	}
}

// The source plugins' part of `rulebook plugins list` and their `describe`
// read as the action plugins' do, with a kind line and the source's schema.
func TestSourceListTableAndDescribe(t *testing.T) {
	infos := []SourceInfo{
		{Name: "broken", Path: "/p/rulebook-source-broken", Err: errors.New("source plugin \"broken\": start:\nexit 1")},
		{Name: "feed", Path: "/p/rulebook-source-feed", Version: "1.2.0", SHA256: "cd34", ProtocolVersion: 1,
			Description: "a feed", Schema: `{"type":"object","required":["url"]}`},
		{Name: "bare", Path: "/p/rulebook-source-bare", Schema: "not json"},
	}
	var b bytes.Buffer
	if err := SourceListTable(&b, infos); err != nil {
		t.Fatal(err)
	}
	want := `SOURCE  VERSION  STATUS  PATH
broken  -        error   /p/rulebook-source-broken
feed    1.2.0    ok      /p/rulebook-source-feed
bare    -        ok      /p/rulebook-source-bare

broken: source plugin "broken": start: exit 1
`
	if got := trimLines(b.String()); got != want {
		t.Errorf("SourceListTable:\n%s\nwant:\n%s", got, want)
	}
	for _, tc := range []struct {
		in   SourceInfo
		want string
	}{
		{infos[1], `name:        feed
kind:        source
path:        /p/rulebook-source-feed
sha256:      cd34
version:     1.2.0
protocol:    1
description: a feed

source feed
  arguments schema:
  {
    "type": "object",
    "required": [
      "url"
    ]
  }
`},
		{infos[0], `name:        broken
kind:        source
path:        /p/rulebook-source-broken
error:       source plugin "broken": start: exit 1

source broken
  arguments: any object
`},
		{infos[2], `name:        bare
kind:        source
path:        /p/rulebook-source-bare

source bare
  arguments schema:
  not json
`},
	} {
		b.Reset()
		if err := DescribeSource(&b, tc.in); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("DescribeSource:\n%s\nwant:\n%s", b.String(), tc.want)
		}
	}
}
