package admin

import (
	"context"

	"github.com/rulebook-dev/rulebook/engine"
)

// TapJournal wraps j so that every record Read returns is first handed to
// f, in order: a way to publish each event the engine is about to process
// (Stream.PublishEvent, Metrics.Processed) without a hook in the engine.
// Give the wrapped journal to engine.Runner; everything else passes
// through. f runs on the runner's goroutine and must be quick.
func TapJournal(j engine.Journal, f func(engine.Record)) engine.Journal {
	return &tappedJournal{Journal: j, tap: f}
}

type tappedJournal struct {
	engine.Journal
	tap func(engine.Record)
}

func (t *tappedJournal) Read(ctx context.Context, after uint64, max int) ([]engine.Record, error) {
	recs, err := t.Journal.Read(ctx, after, max)
	for _, r := range recs {
		t.tap(r)
	}
	return recs, err
}
