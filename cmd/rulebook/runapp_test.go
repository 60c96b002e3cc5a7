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
	ch := make(chan error, 1)
	go func() { ch <- a.run(ctx) }()
	return a, logs, ch, func() {
		cancel()
		if err := <-ch; err != nil {
			t.Errorf("run: %v", err)
		}
	}
}
