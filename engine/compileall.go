package engine

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// parallelMin is the number of conditions below which a ConditionBatch
// has no helper goroutines: a second expr configuration and the
// goroutines cost more than they save on a few.
const parallelMin = 256

// batchChunk is how many conditions a goroutine of a batch takes at once.
const batchChunk = 32

// ConditionBatch is a list of conditions being compiled by
// StartConditions: compiling is a third of the load of a rulebook with
// thousands of rules, and used one core of two.
type ConditionBatch struct {
	c    *Compiler
	srcs []string
	out  []*Condition
	errs []error
	// next is the first chunk no goroutine has taken; done[k] is closed
	// once chunk k is compiled.
	next atomic.Int64
	done []chan struct{}
	stop atomic.Bool
	wg   sync.WaitGroup
}

// StartConditions starts compiling srcs as CompileCondition does, on
// helper goroutines (one per CPU beyond the first) while the caller goes
// on; Get returns each result, compiling it on the caller's goroutine when
// no helper has reached it yet. Get(i) is what CompileCondition(srcs[i])
// returns, whichever goroutine compiled it, so a caller that reports
// errors in srcs' order reports them as a sequential compile would. The
// caller must call Stop when done, and may use c on its own goroutine
// meanwhile; the helpers use copies of c with an expr configuration of
// their own (expr caches type information in its configuration, unsafe
// to share).
func (c *Compiler) StartConditions(srcs []string) *ConditionBatch {
	b := &ConditionBatch{c: c, srcs: srcs, out: make([]*Condition, len(srcs)), errs: make([]error, len(srcs))}
	b.done = make([]chan struct{}, (len(srcs)+batchChunk-1)/batchChunk)
	for k := range b.done {
		b.done[k] = make(chan struct{})
	}
	helpers := 0
	if len(srcs) >= parallelMin {
		helpers = runtime.GOMAXPROCS(0) - 1
	}
	for range helpers {
		hc := *c
		hc.cfg = nil
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			for !b.stop.Load() && b.take(&hc) {
			}
		}()
	}
	return b
}

// take compiles the next chunk nobody has taken with c, and reports
// whether there was one.
func (b *ConditionBatch) take(c *Compiler) bool {
	k := int(b.next.Add(1)) - 1
	if k >= len(b.done) {
		return false
	}
	for i := k * batchChunk; i < min((k+1)*batchChunk, len(b.srcs)); i++ {
		b.out[i], b.errs[i] = c.CompileCondition(b.srcs[i])
	}
	close(b.done[k])
	return true
}

// Get returns the compiled srcs[i] (or its error); only the goroutine
// that called StartConditions may call it.
func (b *ConditionBatch) Get(i int) (*Condition, error) {
	k := i / batchChunk
	for {
		select {
		case <-b.done[k]:
			return b.out[i], b.errs[i]
		default:
		}
		// Not compiled yet: take the next chunk rather than wait,
		// unless a helper is on this one.
		if int(b.next.Load()) > k {
			<-b.done[k]
			return b.out[i], b.errs[i]
		}
		b.take(b.c)
	}
}

// Stop ends the helpers (the chunks they are on are finished) and waits
// for them. Get must not be called after.
func (b *ConditionBatch) Stop() {
	b.stop.Store(true)
	b.wg.Wait()
}
