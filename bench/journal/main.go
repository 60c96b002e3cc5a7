// Command journal compares storage engines for the embedded journal under the
// ingest workload: N concurrent goroutines, each durably appending a ~1 KiB
// event together with a dedupe-key check-and-insert (one atomic decision),
// then acknowledging. It prints events/s and latency percentiles per engine.
//
//	go run ./bench/journal -engines bolt-batch,bolt-group,pebble-group,pebble-pipeline,journal -c 32 -d 5s -rounds 3
//
// The figures chose the engine of package journal; see journal/README.md.
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/journal"
)

// appender is one engine under test: Append must durably store ev under a new
// sequence number unless key was already stored, as one atomic decision.
type appender interface {
	Append(key string, ev []byte) (dup bool, err error)
	Close() error
}

var pebbleMemtable = flag.Int("pebble-memtable", 0, "Pebble MemTableSize in bytes (0: 32 MiB, as package journal)")

func main() {
	engines := flag.String("engines", "bolt-batch,bolt-group,pebble-group,pebble-pipeline", "comma-separated engines to measure (also: journal, the real package)")
	conc := flag.Int("c", 32, "concurrent writers")
	dur := flag.Duration("d", 5*time.Second, "measuring time per engine")
	size := flag.Int("size", 1024, "event size in bytes")
	dir := flag.String("dir", "", "directory for the stores (default: a temporary directory on the working filesystem)")
	boltDelay := flag.Duration("bolt-delay", time.Millisecond, "bbolt MaxBatchDelay for bolt-batch")
	boltSize := flag.Int("bolt-size", 0, "bbolt MaxBatchSize for bolt-batch (0: the number of writers)")
	rounds := flag.Int("rounds", 1, "rounds over all engines; more than one prints medians too")
	randKeys := flag.Bool("random-keys", true, "use random dedupe keys (like delivery UUIDs) instead of ordered ones")
	flag.Parse()

	base := *dir
	if base == "" {
		var err error
		base, err = os.MkdirTemp(".", "journal-bench-")
		if err != nil {
			fatal(err)
		}
		defer os.RemoveAll(base)
	}
	fmt.Printf("writers=%d event=%dB duration=%s rounds=%d random-keys=%v\n", *conc, *size, *dur, *rounds, *randKeys)
	header := func() {
		fmt.Printf("%-16s %10s %9s %9s %9s %8s %12s %11s\n", "engine", "events/s", "p50", "p99", "p99.9", "dups", "cpu/event", "disk/event")
	}
	header()
	names := strings.Split(*engines, ",")
	all := map[string][]result{}
	// Rounds interleave the engines, so that load from elsewhere on the
	// machine spreads over all of them; the summary takes medians.
	for round := range *rounds {
		for _, name := range names {
			path := filepath.Join(base, fmt.Sprintf("%s-%d", name, round))
			var a appender
			var err error
			switch name {
			case "bolt-batch":
				size := *boltSize
				if size == 0 {
					size = *conc
				}
				a, err = openBoltBatch(path, *boltDelay, size)
			case "bolt-group":
				a, err = openBoltGroup(path)
			case "pebble-group":
				a, err = openPebbleGroup(path)
			case "pebble-pipeline":
				a, err = openPebblePipeline(path)
			case "journal":
				a, err = openJournal(path)
			default:
				err = fmt.Errorf("unknown engine %q", name)
			}
			if err != nil {
				fatal(err)
			}
			r := run(a, *conc, *dur, *size, *randKeys)
			_ = os.RemoveAll(path)
			all[name] = append(all[name], r)
			r.print(name)
		}
	}
	if *rounds > 1 {
		fmt.Println("median of rounds:")
		header()
		for _, name := range names {
			median(all[name]).print(name)
		}
	}
}

func (r result) print(name string) {
	fmt.Printf("%-16s %10.0f %9s %9s %9s %8d %12s %10.0fB\n", name, r.rate, r.p50, r.p99, r.p999, r.dups, r.cpu, r.disk)
}

// median takes the median of each figure on its own.
func median(rs []result) result {
	mid := func(get func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = get(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	d := func(get func(result) time.Duration) time.Duration {
		return time.Duration(mid(func(r result) float64 { return float64(get(r)) }))
	}
	return result{
		rate: mid(func(r result) float64 { return r.rate }),
		p50:  d(func(r result) time.Duration { return r.p50 }),
		p99:  d(func(r result) time.Duration { return r.p99 }),
		p999: d(func(r result) time.Duration { return r.p999 }),
		dups: int64(mid(func(r result) float64 { return float64(r.dups) })),
		cpu:  d(func(r result) time.Duration { return r.cpu }),
		disk: mid(func(r result) float64 { return r.disk }),
	}
}

type result struct {
	rate           float64
	p50, p99, p999 time.Duration
	dups           int64
	cpu            time.Duration // user+system CPU per event
	disk           float64       // bytes written to the disk per event
}

// writeBytes returns the bytes this process caused to be written to storage
// (/proc/self/io write_bytes), or -1 when unavailable.
func writeBytes() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func run(a appender, conc int, dur time.Duration, size int, randKeys bool) result {
	ev := []byte(`{"payload":"` + strings.Repeat("x", max(size-14, 0)) + `"}`)
	var (
		wg    sync.WaitGroup
		stop  atomic.Bool
		dups  atomic.Int64
		mu    sync.Mutex
		lats  []time.Duration
		total int64
	)
	start, cpu0, disk0 := time.Now(), cpuTime(), writeBytes()
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 1<<16)
			var prev string
			for i := 0; !stop.Load(); i++ {
				// Every 50th key repeats an earlier one, so the check has hits.
				key := fmt.Sprintf("w%d-%d", w, i)
				if randKeys {
					key = fmt.Sprintf("%016x-%d", rand.Uint64(), w)
				}
				if i%50 == 49 {
					key = prev
				}
				prev = key
				t0 := time.Now()
				dup, err := a.Append(key, ev)
				if err != nil {
					fatal(err)
				}
				local = append(local, time.Since(t0))
				if dup {
					dups.Add(1)
				}
			}
			mu.Lock()
			lats = append(lats, local...)
			total += int64(len(local))
			mu.Unlock()
		}()
	}
	time.Sleep(dur)
	stop.Store(true)
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	// Close flushes what is still buffered, so the store is closed before
	// the disk figure is taken.
	closeErr := a.Close()
	if closeErr != nil {
		fatal(closeErr)
	}
	disk := float64(writeBytes()-disk0) / float64(max(total, 1))
	slices.Sort(lats)
	pct := func(p float64) time.Duration {
		if len(lats) == 0 {
			return 0
		}
		return lats[min(len(lats)-1, int(float64(len(lats))*p))].Round(10 * time.Microsecond)
	}
	return result{rate: float64(total) / elapsed.Seconds(), p50: pct(0.50), p99: pct(0.99), p999: pct(0.999), dups: dups.Load(), cpu: (cpu / time.Duration(max(total, 1))).Round(100 * time.Nanosecond), disk: disk}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "journal bench:", err)
	os.Exit(1)
}

var (
	bEvents = []byte("events")
	bDedupe = []byte("dedupe")
)

func openBolt(path string) (*bolt.DB, error) {
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, err
	}
	db, err := bolt.Open(filepath.Join(path, "bolt.db"), 0o600, &bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bEvents); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(bDedupe)
		return err
	})
	return db, err
}

func boltAppend(tx *bolt.Tx, key string, ev []byte) (bool, error) {
	dd := tx.Bucket(bDedupe)
	if dd.Get([]byte(key)) != nil {
		return true, nil
	}
	if err := dd.Put([]byte(key), []byte{1}); err != nil {
		return false, err
	}
	eb := tx.Bucket(bEvents)
	seq, _ := eb.NextSequence()
	return false, eb.Put(binary.BigEndian.AppendUint64(nil, seq), ev)
}

// boltBatch uses bbolt's own DB.Batch: concurrent calls are coalesced into one
// transaction after MaxBatchDelay or MaxBatchSize calls.
type boltBatch struct{ db *bolt.DB }

func openBoltBatch(path string, delay time.Duration, size int) (*boltBatch, error) {
	db, err := openBolt(path)
	if err != nil {
		return nil, err
	}
	db.MaxBatchDelay = delay
	db.MaxBatchSize = size
	return &boltBatch{db: db}, nil
}

func (b *boltBatch) Append(key string, ev []byte) (bool, error) {
	var dup bool
	err := b.db.Batch(func(tx *bolt.Tx) error {
		var err error
		dup, err = boltAppend(tx, key, ev)
		return err
	})
	return dup, err
}

func (b *boltBatch) Close() error { return b.db.Close() }

// committer is a leader-style group commit: one goroutine takes everything
// queued while the previous commit was running and commits it at once, with no
// added delay.
type committer struct {
	reqs chan *req
	done chan struct{}
}

type req struct {
	key string
	ev  []byte
	dup bool
	err chan error
}

func newCommitter(commit func([]*req) error) *committer {
	c := &committer{reqs: make(chan *req, 4096), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		var group []*req
		for r := range c.reqs {
			group = append(group[:0], r)
		drain:
			for {
				select {
				case r, ok := <-c.reqs:
					if !ok {
						break drain
					}
					group = append(group, r)
				default:
					break drain
				}
			}
			err := commit(group)
			for _, r := range group {
				r.err <- err
			}
		}
	}()
	return c
}

func (c *committer) append(key string, ev []byte) (bool, error) {
	r := &req{key: key, ev: ev, err: make(chan error, 1)}
	c.reqs <- r
	err := <-r.err
	return r.dup, err
}

func (c *committer) close() {
	close(c.reqs)
	<-c.done
}

type boltGroup struct {
	db *bolt.DB
	c  *committer
}

func openBoltGroup(path string) (*boltGroup, error) {
	db, err := openBolt(path)
	if err != nil {
		return nil, err
	}
	g := &boltGroup{db: db}
	g.c = newCommitter(func(group []*req) error {
		return db.Update(func(tx *bolt.Tx) error {
			for _, r := range group {
				var err error
				if r.dup, err = boltAppend(tx, r.key, r.ev); err != nil {
					return err
				}
			}
			return nil
		})
	})
	return g, nil
}

func (g *boltGroup) Append(key string, ev []byte) (bool, error) { return g.c.append(key, ev) }
func (g *boltGroup) Close() error                               { g.c.close(); return g.db.Close() }

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	fatal(fmt.Errorf(format, args...))
}

func openPebble(path string) (*pebble.DB, error) {
	// The same tuning as package journal: bloom filters for the dedupe
	// lookups, a 32 MiB memtable, a 64 MiB block cache.
	opts := &pebble.Options{Logger: quietLogger{}, MemTableSize: 32 << 20, Cache: pebble.NewCache(64 << 20)}
	defer opts.Cache.Unref()
	opts.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	if *pebbleMemtable > 0 {
		opts.MemTableSize = uint64(*pebbleMemtable)
	}
	return pebble.Open(path, opts)
}

func pebbleSeen(db *pebble.DB, key []byte) (bool, error) {
	_, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, closer.Close()
}

// pebbleGroup runs the same committer as boltGroup over one synced Pebble
// batch per group.
type pebbleGroup struct {
	db  *pebble.DB
	c   *committer
	seq uint64
}

func openPebbleGroup(path string) (*pebbleGroup, error) {
	db, err := openPebble(path)
	if err != nil {
		return nil, err
	}
	g := &pebbleGroup{db: db}
	g.c = newCommitter(func(group []*req) error {
		b := db.NewBatch()
		defer b.Close()
		inGroup := map[string]bool{}
		for _, r := range group {
			k := append([]byte("d/"), r.key...)
			seen, err := pebbleSeen(db, k)
			if err != nil {
				return err
			}
			if seen || inGroup[r.key] {
				r.dup = true
				continue
			}
			inGroup[r.key] = true
			g.seq++
			_ = b.Set(k, []byte{1}, nil)
			_ = b.Set(binary.BigEndian.AppendUint64([]byte("e/"), g.seq), r.ev, nil)
		}
		return b.Commit(pebble.Sync)
	})
	return g, nil
}

func (g *pebbleGroup) Append(key string, ev []byte) (bool, error) { return g.c.append(key, ev) }
func (g *pebbleGroup) Close() error                               { g.c.close(); return g.db.Close() }

// pebblePipeline decides under a mutex and applies without waiting for the
// WAL sync, then waits for a synced (empty) log write outside the mutex: the
// concurrent waits share Pebble's own WAL group commit.
type pebblePipeline struct {
	db  *pebble.DB
	mu  sync.Mutex
	seq uint64
}

func openPebblePipeline(path string) (*pebblePipeline, error) {
	db, err := openPebble(path)
	if err != nil {
		return nil, err
	}
	return &pebblePipeline{db: db}, nil
}

func (p *pebblePipeline) Append(key string, ev []byte) (bool, error) {
	k := append([]byte("d/"), key...)
	p.mu.Lock()
	seen, err := pebbleSeen(p.db, k)
	if err != nil || seen {
		p.mu.Unlock()
		if err == nil {
			err = p.db.LogData(nil, pebble.Sync)
		}
		return seen, err
	}
	p.seq++
	b := p.db.NewBatch()
	_ = b.Set(k, []byte{1}, nil)
	_ = b.Set(binary.BigEndian.AppendUint64([]byte("e/"), p.seq), ev, nil)
	err = b.Commit(pebble.NoSync)
	b.Close()
	p.mu.Unlock()
	if err != nil {
		return false, err
	}
	return false, p.db.LogData(nil, pebble.Sync)
}

func (p *pebblePipeline) Close() error { return p.db.Close() }

// journalStore measures package journal itself: Pebble with its own group
// committer, per-source dedupe and order state, backlog bound.
type journalStore struct{ s *journal.Store }

var benchSource = engine.SourceRef{Ruleset: "bench", Name: "hook", Type: "webhook"}

func openJournal(path string) (*journalStore, error) {
	s, err := journal.Open(journal.Options{Dir: path, MaxBacklog: -1, Log: zerolog.Nop()})
	if err != nil {
		return nil, err
	}
	return &journalStore{s: s}, nil
}

func (j *journalStore) Append(key string, ev []byte) (bool, error) {
	out, err := j.s.Emit(context.Background(), benchSource, []engine.Entry{{
		Event:     engine.Event{"payload": string(ev)},
		DedupeKey: key,
	}})
	if err != nil {
		return false, err
	}
	return out[0] == engine.Duplicate, nil
}

func (j *journalStore) Close() error { return j.s.Close() }
