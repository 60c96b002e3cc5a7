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
	mem := vfs.NewCrashableMem()
	s, err := Open(Options{Dir: "/data", Clock: engine.NewFakeClock(t0), fs: countingFS{FS: mem, syncs: &syncs}, syncGather: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	as := s.Actions().(engine.BatchActionStore)

	// The engine is reading, caught up (nothing yet).
	var after uint64
	emitted := make(chan error, 1)
	emitOne := func(n int) {
		go func() {
			_, err := s.Emit(ctx, srcA, []engine.Entry{{Event: ev(n)}})
			emitted <- err
		}()
	}
	read := func() engine.Record {
		t.Helper()
		recs, err := s.Read(ctx, after, 10)
		if err != nil || len(recs) != 1 {
			t.Fatalf("read: %d records, %v", len(recs), err)
		}
		after = recs[0].Seq
		return recs[0]
	}
	readDone := make(chan engine.Record, 1)
	go func() {
		recs, _ := s.Read(ctx, 0, 10)
		readDone <- recs[0]
	}()
	waitReader(t, s)
	before := syncs.Load()
	emitOne(1)
	rec := <-readDone
	after = rec.Seq
	select {
	case err := <-emitted:
		t.Fatalf("the emit was acknowledged (%v) before the engine acted on its record", err)
	default:
	}
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
	emitOne(2)
	rec = read()
	select {
	case err := <-emitted:
		t.Fatalf("the emit was acknowledged (%v) before the engine was done with its record", err)
	default:
	}
	if err := s.Done(ctx, rec.Seq); err != nil {
		t.Fatal(err)
	}
	if err := <-emitted; err != nil {
		t.Fatal(err)
	}
	if got := syncs.Load() - before; got != 1 {
		t.Fatalf("%d WAL syncs for an event that fired nothing, want 1", got)
	}

	// That wait did not pay (no synced write joined it): the next groups
	// are acknowledged without waiting for the engine, but for one in
	// syncProbe, which looks whether firings come again.
	for n := 3; n <= 1+syncProbe; n++ {
		emitOne(n)
		rec = read()
		if n < 1+syncProbe {
			select {
			case err := <-emitted:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("event %d: the emit waited for the engine after a wait that did not pay", n)
			}
			continue
		}
		select {
		case err := <-emitted:
			t.Fatalf("event %d, the probe: acknowledged (%v) before the engine was done with it", n, err)
		default:
		}
		if err := s.Done(ctx, rec.Seq); err != nil {
			t.Fatal(err)
		}
		if err := <-emitted; err != nil {
			t.Fatal(err)
		}
	}
}

// A record the engine read before its sync is lost, with what the engine
// wrote from it, when the power fails before that sync: its emit was not
// acknowledged, so its sender sends it again.
func TestReadBeforeSyncIsLostTogether(t *testing.T) {
	ctx := context.Background()
	mem, s := openCrashable(t, func(o *Options) { o.syncGather = time.Hour })
	read := make(chan engine.Record, 1)
	go func() {
		recs, err := s.Read(ctx, 0, 10)
		if err == nil {
			read <- recs[0]
		}
	}()
	waitReader(t, s)
	emitted := make(chan error, 1)
	go func() {
		_, err := s.Emit(ctx, srcA, []engine.Entry{{Event: ev(1)}})
		emitted <- err
	}()
	rec := <-read
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
	select {
	case err := <-emitted:
		t.Fatalf("emit acknowledged (%v) before its sync", err)
	default:
	}
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
	emitted := make(chan error, 2)
	readDone := make(chan []engine.Record, 1)
	go func() {
		recs, _ := s.Read(ctx, 0, 10)
		readDone <- recs
	}()
	waitReader(t, s)
	go func() {
		_, err := s.Emit(ctx, srcA, []engine.Entry{{Event: ev(1)}})
		emitted <- err
	}()
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
	go func() {
		_, err := s.Emit(ctx, srcA, []engine.Entry{{Event: ev(2)}})
		emitted <- err
	}()
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
