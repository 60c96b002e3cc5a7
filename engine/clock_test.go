package engine_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

var clockT0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// received reports whether ch holds a value, without waiting: a fake
// timer's send happens inside Advance, so it is there when Advance returns.
func received(ch <-chan time.Time) (time.Time, bool) {
	select {
	case v := <-ch:
		return v, true
	default:
		return time.Time{}, false
	}
}

func TestFakeClockFiresDueTimersInDeadlineOrder(t *testing.T) {
	c := engine.NewFakeClock(clockT0)
	var mu sync.Mutex
	var order []string
	fn := func(name string) func() {
		return func() {
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
		}
	}
	c.AfterFunc(3*time.Second, fn("3s"))
	c.AfterFunc(time.Second, fn("1s-a"))
	c.AfterFunc(10*time.Second, fn("10s"))
	c.AfterFunc(2*time.Second, fn("2s"))
	c.AfterFunc(time.Second, fn("1s-b"))
	ch := c.NewTimer(2 * time.Second)
	if got := c.Timers(); got != 6 {
		t.Fatalf("Timers() = %d, want 6", got)
	}

	c.Advance(time.Second - time.Nanosecond)
	if len(order) != 0 || c.Timers() != 6 {
		t.Fatalf("before any deadline: fired %v, %d pending", order, c.Timers())
	}
	if _, ok := received(ch.C()); ok {
		t.Fatal("channel timer fired before its deadline")
	}

	if now := c.Advance(5 * time.Second); !now.Equal(clockT0.Add(6*time.Second - time.Nanosecond)) {
		t.Fatalf("Advance returned %v", now)
	}
	// AfterFunc functions have run by the time Advance returns.
	if want := []string{"1s-a", "1s-b", "2s", "3s"}; !slices.Equal(order, want) {
		t.Fatalf("fired %v, want %v", order, want)
	}
	if v, ok := received(ch.C()); !ok || !v.Equal(clockT0.Add(2*time.Second)) {
		t.Fatalf("channel timer: %v %v, want its deadline", v, ok)
	}
	if got := c.Timers(); got != 1 {
		t.Fatalf("Timers() = %d, want 1 (the 10s one)", got)
	}

	// Set forward fires too.
	c.Set(clockT0.Add(10 * time.Second))
	if order[len(order)-1] != "10s" || c.Timers() != 0 {
		t.Fatalf("after Set: fired %v, %d pending", order, c.Timers())
	}
}

func TestFakeClockStop(t *testing.T) {
	c := engine.NewFakeClock(clockT0)
	fired := false
	af := c.AfterFunc(time.Second, func() { fired = true })
	ct := c.NewTimer(time.Second)
	if !af.Stop() || !ct.Stop() {
		t.Fatal("Stop of a pending timer returned false")
	}
	if af.Stop() || ct.Stop() {
		t.Fatal("second Stop returned true")
	}
	if c.Timers() != 0 {
		t.Fatalf("%d timers pending after Stop", c.Timers())
	}
	c.Advance(time.Hour)
	if fired {
		t.Fatal("a stopped AfterFunc ran")
	}
	if _, ok := received(ct.C()); ok {
		t.Fatal("a stopped timer delivered")
	}

	// Fired but not received: Stop drains it, as Go 1.23+ timers do.
	late := c.NewTimer(time.Second)
	c.Advance(time.Second)
	if !late.Stop() {
		t.Fatal("Stop of a fired, unreceived timer returned false")
	}
	if _, ok := received(late.C()); ok {
		t.Fatal("a stale value survived Stop")
	}
	// Fired and received: Stop has nothing to stop.
	done := c.AfterFunc(time.Second, func() {})
	c.Advance(time.Second)
	if done.Stop() {
		t.Fatal("Stop of a fired AfterFunc returned true")
	}
}

func TestFakeClockSetBackwardsFiresNothing(t *testing.T) {
	c := engine.NewFakeClock(clockT0)
	tm := c.NewTimer(time.Minute) // deadline t0+1m
	c.Set(clockT0.Add(-time.Hour))
	if _, ok := received(tm.C()); ok || c.Timers() != 1 {
		t.Fatalf("moving back fired the timer (pending %d)", c.Timers())
	}
	c.Advance(time.Hour + time.Minute - time.Nanosecond)
	if _, ok := received(tm.C()); ok {
		t.Fatal("fired before its deadline: a deadline is a point in time")
	}
	c.Advance(time.Nanosecond)
	if _, ok := received(tm.C()); !ok {
		t.Fatal("did not fire at its deadline")
	}
}

func TestFakeClockZeroDurationFiresAtOnce(t *testing.T) {
	c := engine.NewFakeClock(clockT0)
	if _, ok := received(c.NewTimer(0).C()); !ok {
		t.Fatal("NewTimer(0) did not fire")
	}
	ran := make(chan struct{})
	c.AfterFunc(-time.Second, func() { close(ran) })
	waitClosed(t, ran, "AfterFunc(-1s)")
	if c.Timers() != 0 {
		t.Fatalf("%d timers pending", c.Timers())
	}
}

func TestFakeClockBlockUntil(t *testing.T) {
	c := engine.NewFakeClock(clockT0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan time.Time, 1)
	go func() {
		tm := c.NewTimer(time.Minute)
		got <- <-tm.C()
	}()
	if err := c.BlockUntil(ctx, 1); err != nil {
		t.Fatalf("BlockUntil: %v", err)
	}
	c.Advance(time.Minute)
	select {
	case v := <-got:
		if !v.Equal(clockT0.Add(time.Minute)) {
			t.Fatalf("received %v", v)
		}
	case <-ctx.Done():
		t.Fatal("the timer armed before Advance never fired")
	}

	// With nothing to wait for, BlockUntil gives up with its context.
	short, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := c.BlockUntil(short, 1); err != context.Canceled {
		t.Fatalf("BlockUntil with no timer = %v, want context.Canceled", err)
	}
	if err := c.BlockUntil(short, 0); err != nil {
		t.Fatalf("BlockUntil(0) = %v", err)
	}
}

// TestFakeClockConcurrent arms, stops and fires timers from many
// goroutines at once (meant for -race): every timer either fires once or
// is stopped, never both.
func TestFakeClockConcurrent(t *testing.T) {
	c := engine.NewFakeClock(clockT0)
	const workers, each = 8, 50
	var mu sync.Mutex
	fired := map[string]int{}
	stopped := map[string]bool{}
	chans := map[string]engine.Timer{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				name := fmt.Sprintf("%d/%d", w, i)
				d := time.Duration(1+(w*each+i)%7) * time.Second
				var tm engine.Timer
				if i%2 == 0 {
					tm = c.AfterFunc(d, func() {
						mu.Lock()
						fired[name]++
						mu.Unlock()
					})
				} else {
					tm = c.NewTimer(d)
					mu.Lock()
					chans[name] = tm
					mu.Unlock()
				}
				if i%3 == 0 && tm.Stop() {
					mu.Lock()
					stopped[name] = true
					mu.Unlock()
				}
				c.Now()
				c.Timers()
			}
		})
	}
	stop := make(chan struct{})
	advanced := make(chan struct{})
	go func() {
		defer close(advanced)
		for {
			select {
			case <-stop:
				return
			default:
				c.Advance(time.Second)
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-advanced
	c.Advance(time.Hour) // whatever is left

	mu.Lock()
	defer mu.Unlock()
	// A fired channel timer holds its value once Advance has returned.
	for name, tm := range chans {
		if _, ok := received(tm.C()); ok {
			fired[name]++
		}
		if _, again := received(tm.C()); again {
			t.Errorf("timer %s delivered twice", name)
		}
	}
	for name, n := range fired {
		if n != 1 || stopped[name] {
			t.Errorf("timer %s fired %d times, stopped %v", name, n, stopped[name])
		}
	}
	if len(fired)+len(stopped) != workers*each {
		t.Errorf("%d fired + %d stopped, want %d", len(fired), len(stopped), workers*each)
	}
	if c.Timers() != 0 {
		t.Errorf("%d timers still pending", c.Timers())
	}
}

// nowOnly is a Clock without timers, like the fake clocks of other
// packages' tests.
type nowOnly struct{}

func (nowOnly) Now() time.Time { return clockT0 }

func TestNewTimerUsesTheClocksTimers(t *testing.T) {
	c := engine.NewFakeClock(clockT0)
	tm := engine.NewTimer(c, time.Hour)
	ran := false
	engine.AfterFunc(c, time.Hour, func() { ran = true })
	if c.Timers() != 2 {
		t.Fatalf("FakeClock has %d timers, want 2: the helpers bypassed it", c.Timers())
	}
	c.Advance(time.Hour)
	if _, ok := received(tm.C()); !ok || !ran {
		t.Fatalf("fake timers did not fire on Advance: channel %v, func %v", ok, ran)
	}

	// A Clock without timers, and no Clock at all, get real timers.
	for _, clk := range []engine.Clock{nowOnly{}, nil} {
		tm := engine.NewTimer(clk, time.Nanosecond)
		select {
		case <-tm.C():
		case <-time.After(10 * time.Second):
			t.Fatalf("%T: real timer never fired", clk)
		}
		done := make(chan struct{})
		engine.AfterFunc(clk, time.Nanosecond, func() { close(done) })
		waitClosed(t, done, fmt.Sprintf("%T: real AfterFunc", clk))
		if engine.NewTimer(clk, time.Hour).Stop() != true {
			t.Fatalf("%T: Stop of a pending real timer returned false", clk)
		}
	}
}

func TestSleep(t *testing.T) {
	c := engine.NewFakeClock(clockT0)
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan bool, 1)
	go func() { res <- engine.Sleep(ctx, c, time.Minute) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := c.BlockUntil(wctx, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-res:
		t.Fatal("Sleep returned before the clock moved")
	default:
	}
	c.Advance(time.Minute)
	if ok := <-res; !ok {
		t.Fatal("Sleep = false after its time passed")
	}

	go func() { res <- engine.Sleep(ctx, c, time.Minute) }()
	if err := c.BlockUntil(wctx, 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	if ok := <-res; ok {
		t.Fatal("Sleep = true after ctx ended")
	}
	if c.Timers() != 0 {
		t.Fatal("a cancelled Sleep left its timer pending")
	}
	if engine.Sleep(ctx, c, 0) {
		t.Fatal("Sleep(0) with an ended ctx = true")
	}
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s never ran", what)
	}
}
