package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
)

// Runner feeds journal records to an engine in order and marks them done
// once processed (and their firings stored), and wakes the engine for its
// timers. A record is marked done only after everything it caused is
// durable, so a crash replays it; firing and invocation IDs are derived from
// its position, so the replay stores nothing twice. With a FactJournal it
// stores the facts' changes with each Done and restores them on start.
type Runner struct {
	Engine  *Engine
	Journal Journal
	Log     zerolog.Logger
	// BatchSize bounds how many records are read at once (default 256).
	BatchSize int
	// OnRecord, when set, sees every record before it is processed (for a
	// live stream or metrics). It must not block.
	OnRecord func(Record)
	// Lookback, when positive and the Journal is a HistoryJournal, makes
	// Run rebuild the engine's rule state before it processes anything:
	// the records done and accepted within Lookback before now are
	// replayed (Engine.Replay: state only, nothing fired). It should be
	// the longest window a rule keeps state for.
	Lookback time.Duration
	// Clock says what now is for Lookback and wakes the engine for its
	// timers. Nil: the system clock.
	Clock Clock
}

// Run processes until ctx ends. It returns nil on cancellation and an error
// when the journal fails.
func (r *Runner) Run(ctx context.Context) error {
	batch := r.BatchSize
	if batch <= 0 {
		batch = 256
	}
	clock := r.Clock
	if clock == nil {
		clock = SystemClock{}
	}
	after, err := r.Journal.LastDone(ctx)
	if err != nil {
		return err
	}
	if err := r.replay(ctx, clock, after, batch); err != nil {
		return ignoreCancel(ctx, err)
	}
	fj, _ := r.Journal.(FactJournal)
	if fj != nil {
		stored, err := fj.Facts(ctx)
		if err != nil {
			return ignoreCancel(ctx, fmt.Errorf("read stored facts: %w", err))
		}
		r.Engine.RestoreFacts(stored)
		r.Log.Info().Int("facts", len(stored)).Msg("facts restored")
	}
	r.Engine.SetLiveSince(clock.Now())
	for ctx.Err() == nil {
		// The read ends early when a timer falls due, and when facts
		// change outside a record (Inject) so that they are stored now.
		rctx, cancelRead := context.WithCancel(ctx)
		var timer Timer
		if d, ok := r.Engine.NextDeadline(); ok {
			timer = AfterFunc(clock, d.Sub(clock.Now()), cancelRead)
		}
		var watch chan struct{}
		if fj != nil {
			watch = make(chan struct{})
			go func() {
				select {
				case <-r.Engine.FactsChanged():
					select {
					case <-watch: // this read is over: the signal is the next one's
						r.Engine.signalFacts()
					default:
						cancelRead()
					}
				case <-watch:
				}
			}()
		}
		recs, err := r.Journal.Read(rctx, after, batch)
		timedOut := rctx.Err() != nil && ctx.Err() == nil
		if timer != nil {
			timer.Stop()
		}
		if watch != nil {
			close(watch)
		}
		cancelRead()
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
			if err := r.done(ctx, fj, after, false); err != nil {
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
		if err := r.done(ctx, fj, last, true); err != nil {
			return ignoreCancel(ctx, err)
		}
		after = last
	}
	return nil
}

// done marks the records up to seq done, with the fact changes made since
// the last call when the journal keeps facts. Without records (moved
// false, seq already done) it writes only when facts changed.
func (r *Runner) done(ctx context.Context, fj FactJournal, seq uint64, moved bool) error {
	if fj == nil {
		if !moved {
			return nil
		}
		return r.Journal.Done(ctx, seq)
	}
	changes := r.Engine.TakeFactChanges()
	if !moved && len(changes) == 0 {
		return nil
	}
	return fj.DoneWithFacts(ctx, seq, changes)
}

// replay rebuilds rule state from the records done within Lookback, up to
// and including done. Records after done are processed by Run: they may
// never have been.
func (r *Runner) replay(ctx context.Context, clock Clock, done uint64, batch int) error {
	hj, ok := r.Journal.(HistoryJournal)
	if r.Lookback <= 0 || !ok || done == 0 {
		return nil
	}
	began := time.Now() // for the log only
	from, err := hj.SeqSince(ctx, clock.Now().Add(-r.Lookback))
	if err != nil {
		return fmt.Errorf("find history to replay: %w", err)
	}
	n := 0
	for after := from - 1; from > 0 && after < done; {
		recs, err := r.Journal.Read(ctx, after, min(batch, int(done-after)))
		if err != nil {
			return fmt.Errorf("read history to replay: %w", err)
		}
		for _, rec := range recs {
			if rec.Seq > done {
				break
			}
			if err := r.Engine.Replay(ctx, rec); err != nil {
				return err
			}
			n++
		}
		after = recs[len(recs)-1].Seq
	}
	r.Log.Info().Int("records", n).Dur("lookback", r.Lookback).Dur("took", time.Since(began)).
		Msg("rule state rebuilt from the journal")
	return nil
}

func ignoreCancel(ctx context.Context, err error) error {
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return nil
	}
	return err
}
