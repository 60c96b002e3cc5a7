package main

import (
	"context"
	"flag"
	"io"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/test/rbtest"
)

// startApp runs the app on path with the run flags args, logging to the
// returned buffer, and returns the app. done receives run's result; stop cancels the run, waits
// for it and reports an error it returned.
func startApp(t *testing.T, path string, args ...string) (a *app, logs *rbtest.Buffer, done <-chan error, stop func()) {
	t.Helper()
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	rf := addRunFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	logs = new(rbtest.Buffer)
	var err error
	a, err = newApp(path, rf, io.Discard, zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// run's result goes to the caller's done and to stop's own channel, so
	// stop never waits for a value the caller has already taken (a test
	// that read done and then failed used to hang in its deferred stop).
	ch, res := make(chan error, 1), make(chan error, 1)
	go func() {
		err := a.run(ctx)
		ch <- err
		res <- err
	}()
	return a, logs, ch, func() {
		cancel()
		if err := <-res; err != nil {
			t.Errorf("run: %v", err)
		}
	}
}
