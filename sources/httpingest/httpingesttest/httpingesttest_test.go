package httpingesttest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

func TestJournal(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 1, 0, 0, 0, time.UTC)
	ref := engine.SourceRef{Ruleset: "rs", Name: "s", Type: "webhook"}
	j := &Journal{}
	got, err := j.Emit(context.Background(), ref, []engine.Entry{
		{DedupeKey: "a"},
		{DedupeKey: "a"},
		{OrderKey: "k", Timestamp: t0},
		{OrderKey: "k", Timestamp: t0.Add(-time.Second)},
		{OrderKey: "k", Timestamp: t0.Add(time.Second)},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []engine.Outcome{engine.Accepted, engine.Duplicate, engine.Accepted, engine.Stale, engine.Accepted}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
	if n := len(j.Accepted()); n != 3 {
		t.Errorf("%d accepted, want 3", n)
	}
	if r := j.Refs(); len(r) != 3 || r[0] != ref {
		t.Errorf("refs %v", r)
	}
	boom := errors.New("boom")
	j.Fail(boom)
	if _, err := j.Emit(context.Background(), ref, []engine.Entry{{}}); err != boom {
		t.Errorf("Emit after Fail = %v, want boom", err)
	}
	if j.Calls() != 2 || !reflect.DeepEqual(j.CallSizes(), []int{5, 1}) {
		t.Errorf("calls %d sizes %v, want 2 [5 1]", j.Calls(), j.CallSizes())
	}
}

func TestSendHeaders(t *testing.T) {
	var seen http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		w.Write([]byte(`{"status":"accepted"}`))
	}))
	defer srv.Close()
	def := http.Header{"Content-Type": {"application/json"}, "User-Agent": {"ua"}}
	r := Send(t, http.MethodPost, srv.URL, "{}", def, "content-type", "text/plain", "X-A", "1", "X-A", "2")
	if r.Status != 200 || r.Body["status"] != "accepted" {
		t.Fatalf("reply %d %v", r.Status, r.Body)
	}
	if got := seen.Values("Content-Type"); !reflect.DeepEqual(got, []string{"text/plain"}) {
		t.Errorf("Content-Type %v, want the caller's only", got)
	}
	if seen.Get("User-Agent") != "ua" || !reflect.DeepEqual(seen.Values("X-A"), []string{"1", "2"}) {
		t.Errorf("headers %v", seen)
	}
	if def.Get("Content-Type") != "application/json" {
		t.Errorf("Send changed the defaults: %v", def)
	}
}

// fakeTB records failures; Fatalf ends the goroutine as testing.T does.
type fakeTB struct {
	testing.TB
	failed bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Errorf(string, ...any) { f.failed = true }
func (f *fakeTB) Fatalf(string, ...any) { f.failed = true; runtime.Goexit() }

func TestWantArgError(t *testing.T) {
	argErr := engine.ArgErrorf([]string{"token"}, "token is empty")
	cases := []struct {
		name    string
		err     error
		want    string
		secrets []string
		fail    bool
	}{
		{"no error wanted", nil, "", nil, false},
		{"unexpected error", argErr, "", nil, true},
		{"missing error", nil, "token", nil, true},
		{"matching", argErr, "token: token is empty", nil, false},
		{"other text", argErr, "port", nil, true},
		{"not an ArgError", errors.New("token is empty"), "token", nil, true},
		{"mentions a secret", argErr, "token", []string{"empty"}, true},
	}
	for _, c := range cases {
		f := &fakeTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			WantArgError(f, c.err, c.want, c.secrets...)
		}()
		<-done
		if f.failed != c.fail {
			t.Errorf("%s: failed = %v, want %v", c.name, f.failed, c.fail)
		}
	}
}

func TestWantAnswer(t *testing.T) {
	busy := Reply{Status: 503, Header: http.Header{"Retry-After": {"3"}}, Body: map[string]any{"error": "backlog full"}}
	cases := []struct {
		name                string
		status              int
		retryAfter, errPart string
		fail                bool
	}{
		{"all match", 503, "3", "backlog", false},
		{"error text not checked", 503, "3", "", false},
		{"other status", 200, "3", "", true},
		{"other Retry-After", 503, "", "", true},
		{"other error", 503, "3", "shutting down", true},
	}
	for _, c := range cases {
		f := &fakeTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			WantAnswer(f, busy, c.status, c.retryAfter, c.errPart)
		}()
		<-done
		if f.failed != c.fail {
			t.Errorf("%s: failed = %v, want %v", c.name, f.failed, c.fail)
		}
	}
}
