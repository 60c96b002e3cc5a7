package sourcetest

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/journal"
)

// Build checks args with spec.Check, as loading a rulebook does, then
// builds the source `name` of ruleset "rs" on clock.
func Build(t testing.TB, spec engine.SourceSpec, name string, args map[string]any, clock engine.Clock) engine.Source {
	t.Helper()
	if err := spec.Check(args); err != nil {
		t.Fatal(err)
	}
	src, err := spec.New(engine.SourceConfig{Name: name, Type: spec.Type, Ruleset: "rs", Args: args, Clock: clock, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// Run runs src on out until the returned stop, which cancels it and fails
// t when Run returns an error or does not return within 10 seconds. stop
// may be called more than once; it also runs at the end of the test.
func Run(t testing.TB, src engine.Source, out engine.Emitter) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, out) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("run did not return when cancelled")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// Start is Build then Run.
func Start(t testing.TB, spec engine.SourceSpec, name string, args map[string]any, clock engine.Clock, out engine.Emitter) (stop func()) {
	t.Helper()
	return Run(t, Build(t, spec, name, args, clock), out)
}

// WaitFor polls cond until it holds, failing t after 20 seconds.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// OpenJournal opens the journal in dir; the test closes it.
func OpenJournal(t testing.TB, dir string) *journal.Store {
	t.Helper()
	s, err := journal.Open(journal.Options{Dir: dir, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Serve runs h on addr ("127.0.0.1:0" for a new port; a former address to
// bring a server back) until the returned stop, which also drops every open
// connection, hijacked (WebSocket) ones included: the server dies. With
// tlsCfg it serves TLS. stop may be called more than once; it also runs at
// the end of the test.
func Serve(t testing.TB, h http.Handler, addr string, tlsCfg *tls.Config) (string, func()) {
	t.Helper()
	var ln net.Listener
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for {
		ln, err = net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // the old listener's port is being released
	}
	if err != nil {
		t.Fatal(err)
	}
	// Hijacked connections outlive Server.Close: requests get a context
	// that stop cancels, and the handlers then drop their connections.
	base, kill := context.WithCancel(context.Background())
	srv := &http.Server{Handler: h, TLSConfig: tlsCfg, BaseContext: func(net.Listener) context.Context { return base }}
	go func() {
		if tlsCfg != nil {
			_ = srv.ServeTLS(ln, "", "")
		} else {
			_ = srv.Serve(ln)
		}
	}()
	var once sync.Once
	stop := func() { once.Do(func() { kill(); _ = srv.Close() }) }
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

// Counter is how many messages a test server has to send: Add raises it
// and wakes every handler that waits on the channel Get returned. The zero
// Counter is ready to use.
type Counter struct {
	mu      sync.Mutex
	n       int
	changed chan struct{}
}

// Add raises the count by k and wakes the waiting handlers.
func (c *Counter) Add(k int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n += k
	if c.changed != nil {
		close(c.changed)
	}
	c.changed = make(chan struct{})
}

// Get returns the count and a channel closed at the next Add.
func (c *Counter) Get() (int, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.changed == nil {
		c.changed = make(chan struct{})
	}
	return c.n, c.changed
}
