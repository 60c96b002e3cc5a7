package engine

import (
	"context"
	"errors"

	"github.com/rs/zerolog"
)

// Runner feeds journal records to an engine in order and marks them done
// once processed (and their firings stored), and wakes the engine for its
// timers. A record is marked done only after everything it caused is
// durable, so a crash replays it; firing and invocation IDs are derived from
// its position, so the replay stores nothing twice.
type Runner struct {
	Engine  *Engine
	Journal Journal
	Log     zerolog.Logger
	// BatchSize bounds how many records are read at once (default 256).
	BatchSize int
	// OnRecord, when set, sees every record before it is processed (for a
	// live stream or metrics). It must not block.
	OnRecord func(Record)
}

// Run processes until ctx ends. It returns nil on cancellation and an error
// when the journal fails.
func (r *Runner) Run(ctx context.Context) error {
	batch := r.BatchSize
	if batch <= 0 {
		batch = 256
	}
	after, err := r.Journal.LastDone(ctx)
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if d, ok := r.Engine.NextDeadline(); ok {
			rctx, cancel = context.WithDeadline(ctx, d)
		}
		recs, err := r.Journal.Read(rctx, after, batch)
		timedOut := rctx.Err() != nil && ctx.Err() == nil
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !timedOut {
			return err
		}
		if len(recs) == 0 {
			if err := r.Engine.Tick(ctx); err != nil {
				return ignoreCancel(ctx, err)
			}
			continue
		}
		if r.OnRecord != nil {
			for _, rec := range recs {
				r.OnRecord(rec)
			}
		}
		if err := r.Engine.ProcessBatch(ctx, recs); err != nil {
			return ignoreCancel(ctx, err)
		}
		last := recs[len(recs)-1].Seq
		if err := r.Journal.Done(ctx, last); err != nil {
			return ignoreCancel(ctx, err)
		}
		after = last
	}
	return nil
}

func ignoreCancel(ctx context.Context, err error) error {
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return nil
	}
	return err
}
