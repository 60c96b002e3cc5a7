package httpingest

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rulebook-dev/rulebook/engine"
)

// BenchmarkEndpoint measures the handler's own cost per request (checks,
// HMAC, JSON parsing, event building) with an emitter that returns at once:
//
//	go test -run '^$' -bench Endpoint -benchmem ./sources/httpingest/
func BenchmarkEndpoint(b *testing.B) {
	body := `{"n": 1, "host": "web1", "alert": "DiskUsageHigh", "severity": "warning", "value": 91.5}`
	out := emitterFunc(func(_ context.Context, _ engine.SourceRef, es []engine.Entry) ([]engine.Outcome, error) {
		return make([]engine.Outcome, len(es)), nil
	})
	for _, bc := range []struct {
		name string
		auth *Verifier
		sig  string
	}{
		{name: "no auth"},
		{name: "github hmac", auth: mustCompile(b, Auth{HMAC: &HMAC{Preset: PresetGitHub, Secrets: []string{"s"}}})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ep := newEndpoint(out, func(e *Endpoint) { e.Auth = bc.auth })
			sig := ""
			if bc.auth != nil {
				sig = "sha256=" + hexOf(bc.auth.mac.sum([]byte("s"), []byte(body)))
			}
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest("POST", "/", strings.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				if sig != "" {
					r.Header.Set("X-Hub-Signature-256", sig)
				}
				w := httptest.NewRecorder()
				ep.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}
