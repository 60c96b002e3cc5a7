package journal

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
)

// countingFS counts the syncs of the WAL files (*.log) of a file system.
type countingFS struct {
	vfs.FS
	syncs *atomic.Int64
}

func (fs countingFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return countingFile{File: f, syncs: fs.syncs}, nil
}

func (fs countingFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return fs.wrap(name, f, err)
}

func (fs countingFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, c)
	return fs.wrap(newname, f, err)
}

func (fs countingFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, c, opts...)
	return fs.wrap(name, f, err)
}

type countingFile struct {
	vfs.File
	syncs *atomic.Int64
}

func (f countingFile) Sync() error     { f.syncs.Add(1); return f.File.Sync() }
func (f countingFile) SyncData() error { f.syncs.Add(1); return f.File.SyncData() }
func (f countingFile) SyncTo(n int64) (bool, error) {
	f.syncs.Add(1)
	return f.File.SyncTo(n)
}

// An engine that keeps up reads a group of events as soon as it is
// written, and the firing it stores from them shares the WAL sync that
// acknowledges them: one sync for an event and its firing, where a sync
// of the event, then one of the firing, made two. Events that fire
// nothing are acknowledged once the engine marks them done. The wait for
// the engine is bounded (syncGather): here an hour, so that only the
// engine's own calls can end it.
func TestEventAndFiringShareOneSync(t *testing.T) {
	ctx := context.Background()
	var syncs atomic.Int64
	mem, s := openCrashable(t, func(o *Options) {
		o.Clock, o.syncGather = engine.NewFakeClock(t0), time.Hour
		o.fs = countingFS{FS: o.fs, syncs: &syncs}
	})
	as := s.Actions().(engine.BatchActionStore)

	// The engine is reading, caught up (nothing yet).
	var after uint64
	read := func() engine.Record {
		t.Helper()
		recs, err := s.Read(ctx, after, 10)
		if err != nil || len(recs) != 1 {
			t.Fatalf("read: %d records, %v", len(recs), err)
		}
		after = recs[0].Seq
		return recs[0]
	}
	readDone := readFirst(t, s)
	before := syncs.Load()
	emitted := emitAsync(s, 1)
	rec := (<-readDone)[0]
	after = rec.Seq
	notAcked(t, emitted, "before the engine acted on its record")
	f := &engine.Firing{ID: "f1", Ruleset: "rs", Rule: "r", Invocations: []*engine.Invocation{{ID: "f1/0", FiringID: "f1", Action: "run_command"}}}
	if err := as.SubmitAll(ctx, []*engine.Firing{f}); err != nil {
		t.Fatal(err)
	}
	if err := <-emitted; err != nil {
		t.Fatal(err)
	}
	if got := syncs.Load() - before; got != 1 {
		t.Fatalf("%d WAL syncs for an event and its firing, want 1", got)
	}
	// Both survive a power loss that keeps nothing unsynced.
	c, err := openAfterCrash(mem, vfs.CrashCloneCfg{})
	if err != nil {
		t.Fatal(err)
	}
	if e, err := c.Actions().(*actionStore).Firing(ctx, "f1"); c.LastSeq() != 1 || e == nil || err != nil {
		t.Fatalf("after a power loss: last seq %d, firing %v (%v); want 1 and the firing", c.LastSeq(), e, err)
	}
	c.Close()
	if err := s.Done(ctx, after); err != nil {
		t.Fatal(err)
	}

	// An event that fires nothing: acknowledged once the engine marks it
	// done, with one sync.
	before = syncs.Load()
	emitted = emitAsync(s, 2)
	rec = read()
	notAcked(t, emitted, "before the engine was done with its record")
	if err := s.Done(ctx, rec.Seq); err != nil {
		t.Fatal(err)
	}
	if err := <-emitted; err != nil {
		t.Fatal(err)
	}
	if got := syncs.Load() - before; got != 1 {
		t.Fatalf("%d WAL syncs for an event that fired nothing, want 1", got)
	}

	// That wait did not pay (no synced write joined it), but one miss
	// does not stop the waits: the groups wait until syncMisses waits in
	// a row did not pay.
	n := 3
	waitsForDone := func(why string) {
		t.Helper()
		emitted := emitAsync(s, n)
		rec := read()
		notAcked(t, emitted, fmt.Sprintf("(event %d, %s) before the engine was done with it", n, why))
		if err := s.Done(ctx, rec.Seq); err != nil {
			t.Fatal(err)
		}
		if err := <-emitted; err != nil {
			t.Fatal(err)
		}
		n++
	}
	for miss := 2; miss <= syncMisses; miss++ {
		waitsForDone(fmt.Sprintf("miss %d of %d", miss, syncMisses))
	}
	// Then the next groups are acknowledged without waiting for the
	// engine, but for one in syncProbe, which looks whether firings come
	// again.
	skip := func() {
		t.Helper()
		for skipped := 1; skipped < syncProbe; skipped++ {
			emitted := emitAsync(s, n)
			read()
			select {
			case err := <-emitted:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("event %d: the emit waited for the engine after %d waits in a row that did not pay", n, syncMisses)
			}
			n++
		}
	}
	skip()
	waitsForDone("a probe that does not pay")

	// A probe that pays (a firing joins its sync) makes the groups wait
	// again.
	skip()
	before = syncs.Load()
	emitted = emitAsync(s, n)
	rec = read()
	notAcked(t, emitted, "(a probe) before the engine acted on its record")
	f = &engine.Firing{ID: "f2", Ruleset: "rs", Rule: "r", Invocations: []*engine.Invocation{{ID: "f2/0", FiringID: "f2", Action: "run_command"}}}
	if err := as.SubmitAll(ctx, []*engine.Firing{f}); err != nil {
		t.Fatal(err)
	}
	if err := <-emitted; err != nil {
		t.Fatal(err)
	}
	if got := syncs.Load() - before; got != 1 {
		t.Fatalf("%d WAL syncs for a probe and its firing, want 1", got)
	}
	if err := s.Done(ctx, rec.Seq); err != nil {
		t.Fatal(err)
	}
	n++
	waitsForDone("after a probe that paid")
}

// A record the engine read before its sync is lost, with what the engine
// wrote from it, when the power fails before that sync: its emit was not
// acknowledged, so its sender sends it again.
func TestReadBeforeSyncIsLostTogether(t *testing.T) {
	ctx := context.Background()
	mem, s := openCrashable(t, func(o *Options) { o.syncGather = time.Hour })
	read := readFirst(t, s)
	emitted := emitAsync(s, 1)
	rec := (<-read)[0]
	// An audit-only firing, written without a sync of its own.
	if err := s.Actions().Submit(ctx, &engine.Firing{ID: "f1", Ruleset: "rs", Rule: "r"}); err != nil {
		t.Fatal(err)
	}
	c, err := openAfterCrash(mem, vfs.CrashCloneCfg{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.Actions().(*actionStore).Firing(ctx, "f1")
	if c.LastSeq() != 0 || e != nil || err != nil {
		t.Fatalf("a power loss before the sync left record %d and firing %v (%v); want neither", c.LastSeq(), e, err)
	}
	c.Close()
	notAcked(t, emitted, "before its sync")
	if err := s.Done(ctx, rec.Seq); err != nil {
		t.Fatal(err)
	}
	if err := <-emitted; err != nil {
		t.Fatal(err)
	}
	c, err = openAfterCrash(mem, vfs.CrashCloneCfg{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if e, err := c.Actions().(*actionStore).Firing(ctx, "f1"); c.LastSeq() != 1 || e == nil || err != nil {
		t.Fatalf("after the acknowledgement a power loss left record %d and firing %v (%v); want both", c.LastSeq(), e, err)
	}
}

// emitAsync emits event n from a goroutine; the channel gets its error.
func emitAsync(s *Store, n int) <-chan error {
	ch := make(chan error, 1)
	go func() {
		_, err := s.Emit(context.Background(), srcA, []engine.Entry{{Event: ev(n)}})
		ch <- err
	}()
	return ch
}

// readFirst starts a Read of s from the start, as a caught-up engine
// does, and returns once it has begun; the channel gets what it read.
func readFirst(t *testing.T, s *Store) <-chan []engine.Record {
	t.Helper()
	ch := make(chan []engine.Record, 1)
	go func() {
		recs, _ := s.Read(context.Background(), 0, 10)
		ch <- recs
	}()
	waitReader(t, s)
	return ch
}

// notAcked fails when emitted has its answer already.
func notAcked(t *testing.T, emitted <-chan error, when string) {
	t.Helper()
	select {
	case err := <-emitted:
		t.Fatalf("the emit was acknowledged (%v) %s", err, when)
	default:
	}
}

// waitReader waits until a Read of s has begun.
func waitReader(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !s.hasReader.Load() {
		if time.Now().After(deadline) {
			t.Fatal("no Read began")
		}
		time.Sleep(time.Millisecond)
	}
}

// The engine's runner calls Done after each batch and waits for it: while
// it waits it cannot act on the records of the group that Done is in, so
// that group must not wait for the engine (here syncGather is an hour).
// Before, a Done committed with new records waited the whole syncGather
// for an engine blocked in that very Done, and counted as a wait that did
// not pay.
func TestDoneInAGroupOfNewRecordsDoesNotWaitForItself(t *testing.T) {
	for _, withFacts := range []bool{false, true} {
		t.Run(fmt.Sprint("facts=", withFacts), func(t *testing.T) { testDoneInAGroupOfNewRecords(t, withFacts) })
	}
}

// testDoneInAGroupOfNewRecords is that test with a Done, or with a
// DoneWithFacts that sets a fact (and so waits for its group's sync).
func testDoneInAGroupOfNewRecords(t *testing.T, withFacts bool) {
	ctx := context.Background()
	s, err := Open(Options{Dir: t.TempDir(), Clock: engine.NewFakeClock(t0), Log: zerolog.Nop(), syncGather: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	as := s.Actions().(engine.BatchActionStore)

	// Record 1, read by the engine, whose firing joins its sync: the
	// last wait paid.
	readDone := readFirst(t, s)
	emitted := emitAsync(s, 1)
	<-readDone
	f := &engine.Firing{ID: "f1", Ruleset: "rs", Rule: "r", Invocations: []*engine.Invocation{{ID: "f1/0", FiringID: "f1", Action: "run_command"}}}
	if err := as.SubmitAll(ctx, []*engine.Firing{f}); err != nil {
		t.Fatal(err)
	}
	if err := <-emitted; err != nil {
		t.Fatal(err)
	}

	// Hold the committer while record 2 and the engine's Done(1) queue,
	// so that they are committed as one group.
	hold := make(chan struct{})
	held := make(chan struct{})
	go func() {
		_ = s.submit(&request{kind: reqApply, apply: func(*group) error {
			close(held)
			<-hold
			return nil
		}})
	}()
	<-held
	emitted = emitAsync(s, 2)
	waitQueued(t, s, 1)
	done := make(chan error, 1)
	go func() {
		if withFacts {
			done <- s.DoneWithFacts(ctx, 1, []engine.FactChange{{Ruleset: "rs", Order: 1, Fact: map[string]any{"a": "b"}}})
			return
		}
		done <- s.Done(ctx, 1)
	}()
	waitQueued(t, s, 2)
	close(hold)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the engine's Done waited for the engine to act on the records of its own group")
	}
	// The engine, free again, reads record 2; the emit is acknowledged
	// once the engine acts on it (here: marks it done).
	recs, err := s.Read(ctx, 1, 10)
	if err != nil || len(recs) != 1 {
		t.Fatalf("read: %v, %v", recs, err)
	}
	if err := s.Done(ctx, recs[0].Seq); err != nil {
		t.Fatal(err)
	}
	if err := <-emitted; err != nil {
		t.Fatal(err)
	}
}

// waitQueued waits until n requests wait for the committer.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(s.reqs) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests queued, want %d", len(s.reqs), n)
		}
		time.Sleep(time.Millisecond)
	}
}
