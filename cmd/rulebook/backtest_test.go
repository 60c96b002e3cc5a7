package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/test/rbtest"
)

// backtestRulebook has a threshold rule, a low-water rule and a throttled
// rule (once per host per hour), all on one webhook source.
func backtestRulebook(port, hot, cold int) string {
	return fmt.Sprintf(`- name: rs
  sources:
    - name: hook
      webhook: {host: 127.0.0.1, port: %d}
  rules:
    - name: hot
      condition: event.payload.cpu > %d
      action: {debug: {msg: "hot {{ event.payload.n }}"}}
    - name: cold
      condition: event.payload.cpu < %d
      action: {debug: {msg: "cold {{ event.payload.n }}"}}
    - name: disk
      condition: event.payload.kind == "disk"
      throttle: {once_within: 1h, group_by: [event.payload.host]}
      action: {debug: {msg: "disk {{ event.payload.host }}"}}
`, port, hot, cold)
}

// TestBacktestDiffsAThresholdChangeOnRecordedEvents records a day of
// synthetic events (virtual time, 15 minutes apart) with a running engine,
// then backtests a rulebook with a lower "hot" threshold and a lower "cold"
// one while that engine still runs: the diff must list exactly the firings
// the change adds and removes, computed here from the events, and the
// throttled rule must fire as once_within in recorded time allows.
func TestBacktestDiffsAThresholdChangeOnRecordedEvents(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	port := rbtest.FreePort(t)
	oldPath := filepath.Join(dir, "old.yml")
	if err := os.WriteFile(oldPath, []byte(backtestRulebook(port, 80, 20)), 0o644); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	rf := addRunFlags(fs)
	if err := fs.Parse([]string{"--data-dir", data}); err != nil {
		t.Fatal(err)
	}
	var logs rbtest.Buffer
	a, err := newApp(oldPath, rf, io.Discard, zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-48 * time.Hour).Truncate(time.Hour)
	clock := engine.NewFakeClock(start)
	a.clock = clock
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(logs.String(), `"message":"running"`); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the engine did not start:\n%s", logs.String())
		}
	}

	type ev struct {
		N    int    `json:"n"`
		CPU  *int   `json:"cpu,omitempty"`
		Kind string `json:"kind,omitempty"`
		Host string `json:"host"`
	}
	var sent []ev
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	for i := 0; i < 96; i++ { // a day, every 15 minutes
		clock.Advance(15 * time.Minute)
		e := ev{N: i, Host: fmt.Sprintf("h%d", i%3)}
		if i%4 == 3 {
			e.Kind = "disk"
		} else {
			cpu := (i * 37) % 100
			e.CPU = &cpu
		}
		body, _ := json.Marshal(e)
		resp, err := http.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("event %d: %s", i, resp.Status)
		}
		sent = append(sent, e)
	}

	newPath := filepath.Join(dir, "new.yml")
	if err := os.WriteFile(newPath, []byte(backtestRulebook(port, 70, 10)), 0o644); err != nil {
		t.Fatal(err)
	}
	// The engine is still running: backtest works on a copy of its journal
	// and compares with the rulebook the data dir last ran (old.yml).
	code, stdout, stderr := runCLI(t, "backtest", newPath, "--data-dir", data, "--since", "", "--format", "json", "--fail-on-diff")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (a difference with --fail-on-diff); stderr:\n%s\nstdout:\n%.3000s", code, stderr, stdout)
	}
	var out struct {
		Events  int    `json:"events"`
		Against string `json:"against"`
		Firings []struct {
			Rule   string                    `json:"rule"`
			Time   time.Time                 `json:"time"`
			Events map[string]map[string]any `json:"events"`
		} `json:"firings"`
		Changes []struct {
			Kind, Rule string
			Old, New   *struct {
				Events map[string]map[string]any `json:"events"`
			}
		} `json:"changes"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("%v:\n%s", err, stdout)
	}
	if out.Events != len(sent) {
		t.Errorf("replayed %d events, want %d", out.Events, len(sent))
	}
	if !strings.Contains(out.Against, oldPath) {
		t.Errorf("compared against %q, want the rulebook the data dir ran (%s)", out.Against, oldPath)
	}

	// Expected, from the events alone.
	var wantChanges []string
	for _, e := range sent {
		if e.CPU == nil {
			continue
		}
		if *e.CPU > 70 && *e.CPU <= 80 {
			wantChanges = append(wantChanges, fmt.Sprintf("added hot %d", e.N))
		}
		if *e.CPU >= 10 && *e.CPU < 20 {
			wantChanges = append(wantChanges, fmt.Sprintf("removed cold %d", e.N))
		}
	}
	var gotChanges []string
	for _, c := range out.Changes {
		f := c.New
		if f == nil {
			f = c.Old
		}
		n := eventN(t, f.Events)
		gotChanges = append(gotChanges, fmt.Sprintf("%s %s %d", c.Kind, c.Rule, n))
	}
	sort.Strings(wantChanges)
	sort.Strings(gotChanges)
	if len(wantChanges) == 0 || strings.Join(gotChanges, "\n") != strings.Join(wantChanges, "\n") {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(gotChanges, "\n"), strings.Join(wantChanges, "\n"))
	}

	// The throttled rule, in recorded time: once per host per hour.
	last := map[string]time.Time{}
	var wantDisk []int
	for i, e := range sent {
		if e.Kind != "disk" {
			continue
		}
		at := start.Add(time.Duration(i+1) * 15 * time.Minute)
		if l, ok := last[e.Host]; ok && at.Sub(l) < time.Hour {
			continue
		}
		last[e.Host] = at
		wantDisk = append(wantDisk, e.N)
	}
	var gotDisk []int
	for _, f := range out.Firings {
		if f.Rule == "disk" {
			gotDisk = append(gotDisk, eventN(t, f.Events))
		}
	}
	if fmt.Sprint(gotDisk) != fmt.Sprint(wantDisk) {
		t.Errorf("disk firings on events %v, want %v", gotDisk, wantDisk)
	}

	// report reads the running engine's audit trail from a copy too; the
	// engine processes the last events after they were acknowledged, so
	// poll until it caught up. A firing with engine actions only becomes
	// durable (and visible in a copy) with the next synced write: send an
	// event no rule matches after each look.
	flush := func() {
		resp, err := http.Post(url, "application/json", strings.NewReader(`{"n": -1, "host": "none"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	wantHot := 0
	for _, e := range sent {
		if e.CPU != nil && *e.CPU > 80 {
			wantHot++
		}
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, stdout, stderr = runCLI(t, "report", "--data-dir", data, "--since", "", "--format", "json")
		if code != 0 {
			t.Fatalf("report: exit %d: %s", code, stderr)
		}
		var rep struct {
			Rules []struct {
				Rule    string
				Firings int
			}
		}
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatalf("report: %v:\n%s", err, stdout)
		}
		got := map[string]int{}
		for _, r := range rep.Rules {
			got[r.Rule] = r.Firings
		}
		if got["hot"] == wantHot && got["disk"] == len(wantDisk) {
			break
		}
		flush()
		if time.Now().After(deadline) {
			t.Fatalf("report firings %v, want hot %d, disk %d", got, wantHot, len(wantDisk))
		}
	}

	// Against itself: no difference, exit 0.
	code, stdout, stderr = runCLI(t, "backtest", newPath, "--against", newPath, "--data-dir", data, "--since", "", "--fail-on-diff")
	if code != 0 || !strings.Contains(stdout, "no difference") {
		t.Errorf("against itself: exit %d, stdout:\n%.2000s\nstderr:\n%s", code, stdout, stderr)
	}
}

// eventN is the payload.n of a single-event firing's event.
func eventN(t *testing.T, events map[string]map[string]any) int {
	t.Helper()
	if len(events) != 1 {
		t.Fatalf("want one event, got %v", events)
	}
	for _, e := range events {
		if p, ok := e["payload"].(map[string]any); ok {
			if n, ok := p["n"].(float64); ok {
				return int(n)
			}
		}
		t.Fatalf("event without payload.n: %v", e)
	}
	return -1
}
