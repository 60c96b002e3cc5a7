package journal

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
)

// What a power loss leaves, at any moment of the engine's cycle (emit,
// read, store the firing, mark done) when Done and audit-only firings are
// written without their own fsync: every acknowledged event is there, and
// a Done is never there without the firings stored before it, so a record
// marked done never loses its firing and one whose Done was lost is read
// again, redelivered. The crash clones keep all synced data and a random
// part of the rest, as a disk might.
func TestPowerLossKeepsOrder(t *testing.T) {
	ctx := context.Background()
	mem, s := openCrashable(t, nil)
	as := s.Actions().(engine.BatchActionStore)
	rng := rand.New(rand.NewPCG(1, 2))
	firingID := func(seq uint64) string { return fmt.Sprintf("f-%d", seq) }

	acked := 0
	crashes, lostDone := 0, 0
	check := func(step string) {
		t.Helper()
		crashes++
		c, err := openAfterCrash(mem, vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rand.New(rand.NewPCG(uint64(crashes), 7))})
		if err != nil {
			t.Fatalf("after %s: reopen: %v", step, err)
		}
		defer c.Close()
		if got := c.LastSeq(); got < uint64(acked) {
			t.Fatalf("after %s: %d records survived, %d were acknowledged", step, got, acked)
		}
		done, _ := c.LastDone(ctx)
		if live, _ := s.LastDone(ctx); done < live {
			lostDone++
		}
		for seq := uint64(1); seq <= done; seq++ {
			e, err := c.Actions().(*actionStore).Firing(ctx, firingID(seq))
			if err != nil || e == nil {
				t.Fatalf("after %s: record %d is done but its firing is gone (%v)", step, seq, err)
			}
		}
		if done < c.LastSeq() {
			recs, err := c.Read(ctx, done, 1)
			if err != nil || len(recs) != 1 || !recs[0].Redelivered {
				t.Fatalf("after %s: the first record not done is not redelivered: %+v, %v", step, recs, err)
			}
		}
	}

	var after uint64
	for i := range 40 {
		if _, err := s.Emit(ctx, srcA, []engine.Entry{{Event: ev(i)}}); err != nil {
			t.Fatal(err)
		}
		acked++
		check(fmt.Sprintf("emit %d", i))
		recs, err := s.Read(ctx, after, 10)
		if err != nil {
			t.Fatal(err)
		}
		var fs []*engine.Firing
		for _, r := range recs {
			fs = append(fs, &engine.Firing{ID: firingID(r.Seq), Ruleset: "rs", Rule: "r"})
		}
		if err := as.SubmitAll(ctx, fs); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("firings of emit %d", i))
		after = recs[len(recs)-1].Seq
		if err := s.Done(ctx, after); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("done of emit %d", i))
	}
	// The test is only worth something if some crashes lost a Done.
	if lostDone == 0 {
		t.Fatalf("no crash of %d lost an unsynced Done", crashes)
	}
	t.Logf("%d crashes, %d lost a Done", crashes, lostDone)
}

// With SyncAllFirings (the bus, whose offsets do not follow this store's
// WAL) an audit-only firing is synced before SubmitAll returns; without it,
// it is not synced by itself.
func TestSyncAllFirings(t *testing.T) {
	for _, syncAll := range []bool{false, true} {
		t.Run(fmt.Sprint("SyncAllFirings=", syncAll), func(t *testing.T) {
			ctx := context.Background()
			mem, s := openCrashable(t, func(o *Options) { o.SyncAllFirings = syncAll })
			if err := s.Actions().Submit(ctx, &engine.Firing{ID: "audit-only", Ruleset: "rs", Rule: "r"}); err != nil {
				t.Fatal(err)
			}
			c, err := openAfterCrash(mem, vfs.CrashCloneCfg{}) // synced data only
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			e, err := c.Actions().(*actionStore).Firing(ctx, "audit-only")
			if err != nil {
				t.Fatal(err)
			}
			if (e != nil) != syncAll {
				t.Fatalf("firing survived a power loss: %v, want %v", e != nil, syncAll)
			}
		})
	}
}

// openCrashable opens a store (with options mod changes, when not nil) on
// an in-memory file system whose power losses openAfterCrash simulates.
// The store is closed when the test ends.
func openCrashable(t *testing.T, mod func(*Options)) (*vfs.MemFS, *Store) {
	t.Helper()
	mem := vfs.NewCrashableMem()
	opts := Options{Dir: "/data", Log: zerolog.Nop(), fs: mem}
	if mod != nil {
		mod(&opts)
	}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return mem, s
}

// openAfterCrash opens a store on what a power loss of mem now would
// leave: all synced data and the part of the rest cfg says. The caller
// closes it.
func openAfterCrash(mem *vfs.MemFS, cfg vfs.CrashCloneCfg) (*Store, error) {
	return Open(Options{Dir: "/data", Log: zerolog.Nop(), fs: mem.CrashClone(cfg)})
}
