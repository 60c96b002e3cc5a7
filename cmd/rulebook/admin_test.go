package main

import (
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/admin"
	"github.com/rulebook-dev/rulebook/engine"
)

// TestAdminReloadPublishesOnce: a reload asked through the admin API shows
// on the live stream as one "reload" entry, not one from the listener and
// one from the app.
func TestAdminReloadPublishesOnce(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rb.yml")
	rb := "- name: rs\n  sources: [{range: {limit: 2, delay: 1h}}]\n  rules:\n    - {name: r, condition: event.i == 1, action: {none: {}}}\n"
	if err := os.WriteFile(path, []byte(rb), 0o644); err != nil {
		t.Fatal(err)
	}
	a, logs, _, stop := startApp(t, path, "--data-dir", filepath.Join(dir, "data"), "--admin", "127.0.0.1:0")
	defer stop()

	var url string
	for deadline := time.Now().Add(10 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for line := range strings.Lines(logs.String()) {
			var l struct{ Message, URL string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Message == "admin listening" {
				url = l.URL
			}
		}
	}
	if url == "" {
		t.Fatalf("the admin listener did not start:\n%s", logs.String())
	}
	resp, err := http.Post(url+"/api/reload", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reload: %s", resp.Status)
	}
	got := a.stream.Recent(admin.KindReload, 10)
	if len(got) != 1 || !strings.HasSuffix(string(got[0].Data), `,"ok":true}`) {
		t.Fatalf("reload entries on the stream: %+v, want one {...\"ok\":true}", got)
	}
}

// Journaled action feedback is not a received event: it stays off the live
// feed, which shows the events that sources delivered.
func TestFeedbackRecordsAreNotEvents(t *testing.T) {
	a, err := newApp("rb.yml", addRunFlags(flag.NewFlagSet("run", flag.ContinueOnError)), io.Discard, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	inv := &engine.Invocation{ID: "x-0", Ruleset: "rs"}
	a.observeRecord(engine.Record{Seq: 1, Source: engine.FeedbackSource("rs"),
		Event: engine.FeedbackEntry(inv, []map[string]any{{"restarted": true}}, nil, now).Event})
	a.observeRecord(engine.Record{Seq: 2, Source: engine.SourceRef{Ruleset: "rs", Name: "hook", Type: "webhook"},
		Event: engine.NewEvent(map[string]any{"i": 1}, "hook", "webhook", now)})
	got := a.stream.Recent(admin.KindEvent, 10)
	if len(got) != 1 || !strings.Contains(string(got[0].Data), `"seq":2`) {
		t.Fatalf("event entries: %+v, want only the webhook's (seq 2)", got)
	}
}
