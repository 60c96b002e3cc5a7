package urlcheck

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/internal/sourcetest"
)

func TestURLCheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/down" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer tlsSrv.Close()

	clock := engine.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	src, err := Spec().New(engine.SourceConfig{Name: "u", Type: Type, Clock: clock, Args: map[string]any{
		"urls": []any{srv.URL + "/", srv.URL + "/down", closedURL + "/", tlsSrv.URL + "/"}, "delay": 30, "verify_ssl": false}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	out := make(sourcetest.Events)
	done := make(chan error, 1)
	go func() { done <- src.Run(runCtx, out) }()
	next := func() map[string]any {
		select {
		case ev := <-out:
			return ev["url_check"].(map[string]any)
		case <-ctx.Done():
			t.Fatal("no event")
		}
		return nil
	}
	if e := next(); e["status"] != "up" || e["status_code"] != 200 {
		t.Errorf("up: %v", e)
	}
	if e := next(); e["status"] != "down" || e["status_code"] != 503 {
		t.Errorf("503: %v", e)
	}
	if e := next(); e["status"] != "down" || e["error_msg"] == nil || e["url"] != closedURL+"/" {
		t.Errorf("refused: %v", e)
	}
	if e := next(); e["status"] != "up" {
		t.Errorf("self-signed with verify_ssl false: %v", e)
	}
	// The next round waits delay on the clock.
	if err := clock.BlockUntil(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(30 * time.Second)
	if e := next(); e["status"] != "up" {
		t.Errorf("second round: %v", e)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, bad := range []map[string]any{{}, {"urls": []any{"ftp://x"}}, {"urls": []any{"http://x"}, "verify_ssl": "no"}, {"urls": []any{"http://x"}, "delay": -1}} {
		if _, err := parse(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
