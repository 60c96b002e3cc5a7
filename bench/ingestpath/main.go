// Command ingestpath serves a webhook source whose events go to the embedded
// durable journal (package journal), with a reader that marks every record
// done, and no rule engine. bench/ingest.sh measures it as the "journal"
// target: the cost of the durable ingest path alone, between the bare
// handler and the full `rulebook run`.
//
//	go run ./bench/ingestpath -addr 127.0.0.1:18082 -data-dir /tmp/ingestpath
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/journal"
	"github.com/rulebook-dev/rulebook/sources/httpingest"
	"github.com/rulebook-dev/rulebook/sources/webhook"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18082", "listen address")
	dir := flag.String("data-dir", "", "journal directory (required)")
	flag.Parse()
	if err := run(*addr, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "ingestpath:", err)
		os.Exit(1)
	}
}

func run(addr, dir string) error {
	if dir == "" {
		return errors.New("-data-dir is required")
	}
	log := zerolog.New(os.Stderr).Level(zerolog.WarnLevel).With().Timestamp().Logger()
	store, err := journal.Open(journal.Options{Dir: dir, Log: log})
	if err != nil {
		return err
	}
	defer store.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The reader stands in for the engine: it marks records done as they
	// come, so the backlog bound is never what limits the figures.
	readerDone := make(chan error, 1)
	go func() {
		var after uint64
		for {
			recs, err := store.Read(ctx, after, 1024)
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, engine.ErrClosed) {
					readerDone <- nil
				} else {
					readerDone <- err
				}
				return
			}
			if len(recs) == 0 {
				continue
			}
			after = recs[len(recs)-1].Seq
			if err := store.Done(ctx, after); err != nil && ctx.Err() == nil {
				readerDone <- err
				return
			}
		}
	}()

	hub := httpingest.NewHub(httpingest.HubConfig{Log: log})
	spec := webhook.Spec(hub)
	args := map[string]any{"address": addr, "path": "/"}
	if err := spec.Check(args); err != nil {
		return err
	}
	src, err := spec.New(engine.SourceConfig{Name: "bench", Type: webhook.Type, Ruleset: "bench", Args: args, Clock: engine.SystemClock{}, Log: log})
	if err != nil {
		return err
	}
	runErr := src.Run(ctx, store)
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hub.Stop(stopCtx)
	stop()
	return errors.Join(runErr, <-readerDone)
}
