package httpingest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/rulebook-dev/rulebook/engine"
)

func TestOnRejectNamesTheReason(t *testing.T) {
	verifier, err := Auth{BearerTokens: []string{"s3cret"}}.Compile()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	ep := &Endpoint{
		Source: engine.SourceRef{Ruleset: "rs", Name: "hook"}, MaxBodyBytes: 16, Auth: verifier,
		Build: func(*Request) ([]engine.Entry, error) { return nil, nil },
		OnReject: func(src engine.SourceRef, reason string) {
			mu.Lock()
			got = append(got, src.Name+":"+reason)
			mu.Unlock()
		},
	}
	cases := []struct {
		method, ctype, body, auth string
		want                      string
	}{
		{"GET", "application/json", "{}", "Bearer s3cret", "hook:method"},
		{"POST", "application/json", "{}", "Bearer wrong", "hook:auth"},
		{"POST", "application/json", strings.Repeat("x", 64), "Bearer s3cret", "hook:size"},
		{"POST", "application/pdf", "{}", "Bearer s3cret", "hook:media_type"},
		{"POST", "application/json", "{", "Bearer s3cret", "hook:parse"},
	}
	for _, tc := range cases {
		got = nil
		r := httptest.NewRequest(tc.method, "/", strings.NewReader(tc.body))
		r.Header.Set("Content-Type", tc.ctype)
		r.Header.Set("Authorization", tc.auth)
		w := httptest.NewRecorder()
		ep.ServeHTTP(w, r)
		if w.Code == http.StatusOK || len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s %s %q: status %d, reported %v, want %s", tc.method, tc.ctype, tc.body, w.Code, got, tc.want)
		}
	}
}
