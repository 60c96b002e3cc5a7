package journal

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
)

// BenchmarkEmitParallel measures the ingest workload that chose the engine:
// 32 goroutines each durably emitting one ~1 KiB event with a fresh dedupe
// key, as 32 webhook connections would. It reports events/s and the p50 and
// p99 latency of Emit.
//
//	go test -run '^$' -bench EmitParallel -benchtime 5s ./journal
func BenchmarkEmitParallel(b *testing.B) {
	const writers = 32
	// Warnings (write stalls, slow disk) explain a long tail.
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).Level(zerolog.WarnLevel)
	s, err := Open(Options{Dir: b.TempDir(), Log: log, MaxBacklog: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	payload := strings.Repeat("x", 1000)
	var (
		next atomic.Int64
		mu   sync.Mutex
		lats []time.Duration
	)
	b.SetParallelism((writers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		ctx := context.Background()
		for pb.Next() {
			id := fmt.Sprintf("%x-%d", time.Now().UnixNano(), next.Add(1))
			e := engine.Entry{Event: engine.Event{"payload": payload, "meta": map[string]any{"uuid": id}}, DedupeKey: id}
			start := time.Now()
			if _, err := s.Emit(ctx, srcA, []engine.Entry{e}); err != nil {
				b.Error(err)
				return
			}
			local = append(local, time.Since(start))
		}
		mu.Lock()
		lats = append(lats, local...)
		mu.Unlock()
	})
	b.StopTimer()
	slices.Sort(lats)
	if len(lats) > 0 {
		b.ReportMetric(float64(len(lats))/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(float64(lats[len(lats)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds())/1000, "p99-ms")
	}
	b.ReportMetric(0, "ns/op")
}
