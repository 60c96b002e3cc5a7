package journal

import (
	"encoding/json"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
)

// benchEvent is the event the webhook source builds for bench/post.lua's
// request.
func benchEvent() engine.Event {
	return engine.Event{
		"payload": map[string]any{"n": 12345.0, "thread": 1.0, "host": "web45", "alert": "DiskUsageHigh", "severity": "warning", "value": 91.5},
		"meta": map[string]any{
			"endpoint": "/", "method": "POST", "remote_addr": "127.0.0.1:53030", "query": map[string]any{},
			"headers":     map[string]any{"Content-Length": "101", "Content-Type": "application/json", "User-Agent": "wrk"},
			"received_at": "2026-11-29T03:58:56.144681194Z", "uuid": "b0b2bf2c-dae6-4f6d-b47c-f18db44af223",
			"source": map[string]any{"name": "bench", "type": "webhook"},
		},
	}
}

// The record's way through the journal, written and read back: encodeValue
// (which gives the decoded tree as it encodes) against encoding/json both
// ways, which it replaced.
//
//	go test -run '^$' -bench 'EventCodec' -benchmem ./journal
func BenchmarkEventCodec(b *testing.B) {
	ev := benchEvent()
	b.Run("encodeValue", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := encodeValue(nil, ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json-both-ways", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			j, err := json.Marshal(ev)
			if err != nil {
				b.Fatal(err)
			}
			var back engine.Event
			if err := json.Unmarshal(j, &back); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Read right behind the writers (the recent ring) against Read of the same
// records from the database (what a restart or a lagging reader does).
//
//	go test -run '^$' -bench 'ReadBehind' -benchmem ./journal
func BenchmarkReadBehind(b *testing.B) {
	s, err := Open(Options{Dir: b.TempDir(), Log: zerolog.Nop(), MaxBacklog: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const n = 2048
	entries := make([]engine.Entry, 64)
	for i := range entries {
		entries[i] = engine.Entry{Event: benchEvent()}
	}
	for i := 0; i < n; i += len(entries) {
		if _, err := s.Emit(b.Context(), srcA, entries); err != nil {
			b.Fatal(err)
		}
	}
	read := func(b *testing.B, fromRing bool) {
		b.ReportAllocs()
		for b.Loop() {
			var recs []engine.Record
			var ok bool
			if fromRing {
				recs, ok = s.recent.get(0, n, 256)
			} else {
				recs, err = s.readRange(0, n, 256)
				ok = err == nil
			}
			if !ok || len(recs) != 256 {
				b.Fatalf("%d records, ok %v (%v)", len(recs), ok, err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/256, "ns/record")
	}
	b.Run("ring", func(b *testing.B) { read(b, true) })
	b.Run("database", func(b *testing.B) { read(b, false) })
}
