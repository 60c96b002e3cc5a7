// Package sourcetest holds what tests of event sources share.
package sourcetest

import (
	"context"

	"github.com/rulebook-dev/rulebook/engine"
)

// Events is an engine.Emitter that hands each emitted event to the test
// as it comes: Emit blocks until the test receives it, or ctx ends.
type Events chan engine.Event

// Emit implements engine.Emitter; every entry is accepted.
func (e Events) Emit(ctx context.Context, _ engine.SourceRef, entries []engine.Entry) ([]engine.Outcome, error) {
	for _, en := range entries {
		select {
		case e <- en.Event:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return make([]engine.Outcome, len(entries)), nil
}
