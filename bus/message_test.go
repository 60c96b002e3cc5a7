package bus

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

func TestMessageRoundTrip(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	src := engine.SourceRef{Ruleset: "rs", Name: "hook", Type: "webhook"}
	e := engine.Entry{
		Event:     engine.Event{"payload": map[string]any{"n": 1.5}, "meta": map[string]any{"hosts": []any{"h1"}}},
		DedupeKey: "d", DedupeWindow: time.Hour, OrderKey: "o", Timestamp: at.Add(-time.Minute),
	}
	b, err := encodeMessage(newMessage(src, e, at))
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.ref() != src || !reflect.DeepEqual(m.Event, e.Event) || m.DedupeKey != "d" || time.Duration(m.DedupeWindow) != time.Hour ||
		m.OrderKey != "o" || !m.Timestamp.Equal(e.Timestamp) || !m.Accepted.Equal(at) {
		t.Fatalf("round trip changed the message: %+v", m)
	}
}

func TestDecodeMessageRejects(t *testing.T) {
	tests := []struct{ name, in, err string }{
		{"not json", `hello`, "decode bus message"},
		{"other version", `{"v":2,"source":{"ruleset":"r","name":"n"},"event":{},"accepted":"2026-01-01T00:00:00Z"}`, "unknown version 2"},
		{"no source", `{"v":1,"event":{},"accepted":"2026-01-01T00:00:00Z"}`, "source without"},
		{"no event", `{"v":1,"source":{"ruleset":"r","name":"n"},"accepted":"2026-01-01T00:00:00Z"}`, "no event"},
		{"no accepted", `{"v":1,"source":{"ruleset":"r","name":"n"},"event":{}}`, "no accepted time"},
		{"negative window", `{"v":1,"source":{"ruleset":"r","name":"n"},"event":{},"accepted":"2026-01-01T00:00:00Z","dedupe_window_ns":-1}`, "negative dedupe window"},
		{"event not an object", `{"v":1,"source":{"ruleset":"r","name":"n"},"event":[1],"accepted":"2026-01-01T00:00:00Z"}`, "decode bus message"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeMessage([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("decodeMessage(%s) error = %v, want %q", tc.in, err, tc.err)
			}
		})
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add([]byte(`{"v":1,"source":{"ruleset":"r","name":"n"},"event":{"a":1},"accepted":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"v":1,"source":{"ruleset":"r","name":"n"},"event":{},"accepted":"2026-01-01T00:00:00Z","dedupe_key":"k","order_key":"o","timestamp":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMessage(b)
		if err != nil {
			return
		}
		// What the consumer accepts re-encodes to something it accepts again
		// with the same meaning.
		b2, err := encodeMessage(m)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		m2, err := decodeMessage(b2)
		if err != nil {
			t.Fatalf("re-decode of %s: %v", b2, err)
		}
		if m2.ref() != m.ref() || m2.DedupeKey != m.DedupeKey || m2.OrderKey != m.OrderKey ||
			!m2.Accepted.Equal(m.Accepted) || m2.DedupeWindow != m.DedupeWindow {
			t.Fatalf("re-decode changed the message: %+v vs %+v", m, m2)
		}
		f := newFilter(time.Hour)
		_ = f.decide(&m)
	})
}
