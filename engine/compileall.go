package engine

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// parallelMin is the number of conditions below which CompileConditions
// compiles on the calling goroutine: a second expr configuration and the
// goroutines cost more than they save on a few.
const parallelMin = 256

// CompileConditions compiles every source as CompileCondition does, on up
// to one goroutine per CPU: compiling is a third of the load of a
// rulebook with thousands of rules. out[i] and errs[i] are what
// CompileCondition(srcs[i]) returns, whichever goroutine compiled it, so
// a caller that reports errors in srcs' order reports them as a
// sequential compile would. Every goroutine but the caller's own uses a
// copy of c with an expr configuration of its own: expr caches type
// information in its configuration, unsafe to share.
func (c *Compiler) CompileConditions(srcs []string) (out []*Condition, errs []error) {
	out = make([]*Condition, len(srcs))
	errs = make([]error, len(srcs))
	workers := min(runtime.GOMAXPROCS(0), len(srcs)/(parallelMin/2))
	if workers <= 1 {
		for i, src := range srcs {
			out[i], errs[i] = c.CompileCondition(src)
		}
		return out, errs
	}
	const chunk = 32
	var next atomic.Int64
	work := func(wc *Compiler) {
		for {
			end := int(next.Add(chunk))
			start := end - chunk
			if start >= len(srcs) {
				return
			}
			for i := start; i < min(end, len(srcs)); i++ {
				out[i], errs[i] = wc.CompileCondition(srcs[i])
			}
		}
	}
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wc := *c
		wc.cfg = nil
		wg.Add(1)
		go func() {
			defer wg.Done()
			work(&wc)
		}()
	}
	work(c)
	wg.Wait()
	return out, errs
}
