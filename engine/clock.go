package engine

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Clock is the one source of time for rule state: every timeout, throttle
// window and expiry reads it, so tests can drive time without sleeping.
type Clock interface {
	Now() time.Time
}

// TimerClock is a Clock that also makes timers, so that code which waits
// (a source's delay between events, a listener's linger window) waits on
// the same time its tests drive. Code that needs a timer calls NewTimer or
// AfterFunc with whatever Clock it was given: a Clock without timers gets
// real ones.
type TimerClock interface {
	Clock
	// NewTimer returns a timer that sends the time on its C once d has
	// passed on this clock.
	NewTimer(d time.Duration) Timer
	// AfterFunc returns a timer that calls f once d has passed on this
	// clock. Its C is nil.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is one pending wakeup from a TimerClock, like a *time.Timer.
type Timer interface {
	// C delivers the time the timer fired (buffered, once). Nil for a
	// timer made by AfterFunc.
	C() <-chan time.Time
	// Stop keeps the timer from firing. It reports whether the call stopped
	// it: false when it had already fired (an AfterFunc's f has been or is
	// being called) or was stopped before. After Stop, C delivers nothing,
	// as with the standard library's timers since Go 1.23.
	Stop() bool
}

var (
	_ TimerClock = SystemClock{}
	_ TimerClock = (*FakeClock)(nil)
)

// NewTimer returns a timer that fires once d has passed on c: c's own timer
// when c is a TimerClock, a real one otherwise (c may be nil).
func NewTimer(c Clock, d time.Duration) Timer {
	if tc, ok := c.(TimerClock); ok {
		return tc.NewTimer(d)
	}
	return SystemClock{}.NewTimer(d)
}

// AfterFunc calls f once d has passed on c: on c's own timer when c is a
// TimerClock, on a real one otherwise (c may be nil).
func AfterFunc(c Clock, d time.Duration, f func()) Timer {
	if tc, ok := c.(TimerClock); ok {
		return tc.AfterFunc(d, f)
	}
	return SystemClock{}.AfterFunc(d, f)
}

// Sleep waits until d has passed on c or ctx ends, whichever is first, and
// reports whether it was the former. A d <= 0 does not wait.
func Sleep(ctx context.Context, c Clock, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := NewTimer(c, d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}

// SystemClock reads the wall clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// NewTimer returns a real timer: time.NewTimer(d).
func (SystemClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

// AfterFunc returns a real timer: time.AfterFunc(d, f).
func (SystemClock) AfterFunc(d time.Duration, f func()) Timer {
	return realTimer{time.AfterFunc(d, f)}
}

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop() bool          { return r.t.Stop() }

// FakeClock is a TimerClock that moves only when told to. It is safe for
// concurrent use.
//
// Its timers fire when Advance or Set moves the clock to or past their
// deadline, in deadline order (timers with the same deadline in the order
// they were made). A timer made by NewTimer receives its deadline on C; the
// f of one made by AfterFunc runs in the goroutine that called Advance or
// Set, before that call returns, so a test sees its effect at once (f must
// therefore not wait for that goroutine). Moving the clock backwards fires
// nothing: a deadline is a point in time, not a duration. A timer made with
// d <= 0 fires at once (an AfterFunc's f in a goroutine of its own).
//
// Code under test usually arms its timer in a goroutine of its own; a test
// calls BlockUntil before Advance so that it moves the clock only once the
// timer is there to see it.
type FakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer  // pending, in the order they were made
	changed chan struct{} // closed and replaced when timers changes; nil until needed
}

// NewFakeClock returns a FakeClock set to t.
func NewFakeClock(t time.Time) *FakeClock { return &FakeClock{now: t} }

// Now returns the clock's current time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t (backwards too) and fires the timers that are
// due at t.
func (c *FakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.fire()
}

// Advance moves the clock forward by d, fires the timers that are due, and
// returns the new time.
func (c *FakeClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	c.now = c.now.Add(d)
	now := c.now
	c.fire()
	return now
}

// fire takes the due timers out of the pending ones, sends on the channels
// of those made by NewTimer and unlocks c, then calls the functions of
// those made by AfterFunc, all in deadline order. Called with c.mu held.
func (c *FakeClock) fire() {
	var due []*fakeTimer
	c.timers = slices.DeleteFunc(c.timers, func(t *fakeTimer) bool {
		if t.at.After(c.now) {
			return false
		}
		due = append(due, t)
		return true
	})
	// Stable: timers with the same deadline stay in the order they were made.
	slices.SortStableFunc(due, func(a, b *fakeTimer) int { return a.at.Compare(b.at) })
	if len(due) > 0 {
		c.notify()
	}
	// Sends happen under the lock so that a Stop that follows drains them.
	for _, t := range due {
		if t.ch != nil {
			t.ch <- t.at // buffered, and sent to at most once
		}
	}
	c.mu.Unlock()
	for _, t := range due {
		if t.fn != nil {
			t.fn()
		}
	}
}

// notify wakes BlockUntil. Called with c.mu held.
func (c *FakeClock) notify() {
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
}

// Timers returns how many timers are pending: made, and neither fired nor
// stopped.
func (c *FakeClock) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// BlockUntil waits until at least n timers are pending, and returns nil, or
// ctx's error when ctx ends first.
func (c *FakeClock) BlockUntil(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		if len(c.timers) >= n {
			c.mu.Unlock()
			return nil
		}
		if c.changed == nil {
			c.changed = make(chan struct{})
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// NewTimer returns a timer that receives its deadline, c.Now()+d, once the
// clock reaches it.
func (c *FakeClock) NewTimer(d time.Duration) Timer {
	return c.add(d, make(chan time.Time, 1), nil)
}

// AfterFunc returns a timer that calls f once the clock reaches
// c.Now()+d.
func (c *FakeClock) AfterFunc(d time.Duration, f func()) Timer {
	return c.add(d, nil, f)
}

func (c *FakeClock) add(d time.Duration, ch chan time.Time, fn func()) *fakeTimer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clock: c, at: c.now.Add(d), ch: ch, fn: fn}
	if d <= 0 {
		if ch != nil {
			ch <- t.at
		} else {
			go fn()
		}
		return t
	}
	c.timers = append(c.timers, t)
	c.notify()
	return t
}

type fakeTimer struct {
	clock *FakeClock
	at    time.Time
	ch    chan time.Time // NewTimer
	fn    func()         // AfterFunc
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	if i := slices.Index(c.timers, t); i >= 0 {
		c.timers = slices.Delete(c.timers, i, i+1)
		c.notify()
		return true
	}
	if t.ch != nil {
		select {
		case <-t.ch:
			return true // fired but not received: as if stopped in time
		default:
		}
	}
	return false
}
