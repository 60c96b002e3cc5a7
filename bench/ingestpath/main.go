// Command ingestpath serves a webhook source with no rule engine behind it.
// With -store journal its events go to the embedded durable journal
// (package journal), with a reader that marks every record done:
// bench/ingest.sh measures it as the "journal" target, the cost of the
// durable ingest path alone. With -store none, Emit returns at once: the
// "source" target, the cost of the HTTP source itself (checks, parsing,
// event building) without any storage.
//
//	go run ./bench/ingestpath -addr 127.0.0.1:18082 -data-dir /tmp/ingestpath
//	go run ./bench/ingestpath -addr 127.0.0.1:18083 -store none
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
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
	dir := flag.String("data-dir", "", "journal directory (required with -store journal)")
	store := flag.String("store", "journal", "where events go: journal or none")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to `FILE` until exit")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ingestpath:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "ingestpath:", err)
			os.Exit(1)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	var err error
	switch *store {
	case "journal":
		err = run(*addr, *dir)
	case "none":
		err = serve(*addr, discard{}, zerolog.New(os.Stderr).Level(zerolog.WarnLevel))
	default:
		err = fmt.Errorf("-store %q is not journal or none", *store)
	}
	if err != nil {
		pprof.StopCPUProfile()
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

	runErr := serveCtx(ctx, addr, store, log)
	stop()
	return errors.Join(runErr, <-readerDone)
}

// discard accepts every entry without storing it.
type discard struct{}

func (discard) Emit(_ context.Context, _ engine.SourceRef, es []engine.Entry) ([]engine.Outcome, error) {
	return make([]engine.Outcome, len(es)), nil
}

func serve(addr string, out engine.Emitter, log zerolog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serveCtx(ctx, addr, out, log)
}

// serveCtx runs a webhook source on addr until ctx ends.
func serveCtx(ctx context.Context, addr string, out engine.Emitter, log zerolog.Logger) error {
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
	runErr := src.Run(ctx, out)
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(runErr, hub.Stop(stopCtx))
}
