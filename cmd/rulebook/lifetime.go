package main

import (
	"context"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

// awaitTimers runs once every source has ended and what they sent is
// processed: as in Event-Driven Ansible, a not_all window or a once_after
// window still open fires before the run ends. It waits for each such
// timer (the runner fires it on the clock) and the actions it causes. It
// returns early with the shutdown request when a shutdown action comes, or
// when ctx ends (a signal).
func (a *app) awaitTimers(ctx context.Context) (engine.ShutdownRequest, bool) {
	for a.eng != nil {
		due, ok := a.eng.NextTimerFiring()
		if !ok {
			return engine.ShutdownRequest{}, false
		}
		a.log.Info().Time("due", due).Msg("sources ended; waiting for a pending timer")
		// The runner ticks the engine at the deadline; look again just
		// after it.
		wait := engine.NewTimer(a.clock, max(due.Sub(a.clock.Now()), 0)+50*time.Millisecond)
		select {
		case <-ctx.Done():
			wait.Stop()
			return engine.ShutdownRequest{}, false
		case r := <-a.shutdown:
			wait.Stop()
			return r, true
		case <-wait.C():
		}
		waitIdle(ctx, a.store, 50*time.Millisecond)
		waitActions(ctx, a.store.Actions(), 100*time.Millisecond)
	}
	return engine.ShutdownRequest{}, false
}
