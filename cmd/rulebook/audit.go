package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/rulebook-dev/rulebook/dispatch"
	"github.com/rulebook-dev/rulebook/journal"
)

func cmdAudit(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("audit", "audit [--data-dir DIR] [--rule R] [--ruleset RS] [--status S] [--since T] [--until T] [--event ID] [--limit N] [--format table|json]", stderr)
	dataDir := fs.String("data-dir", "./data", "`DIR` of the engine's data (the engine must not be running: the store is opened exclusively)")
	var fl dispatch.FilterFlags
	fs.StringVar(&fl.Rule, "rule", "", "only firings of this rule")
	fs.StringVar(&fl.Ruleset, "ruleset", "", "only firings of this ruleset")
	fs.StringVar(&fl.Status, "status", "", "only firings with an action in this status: queued, running, retrying, succeeded, failed")
	fs.StringVar(&fl.Since, "since", "", "from this time: RFC 3339, a date, or a duration back from now (90m, 2h, 7d)")
	fs.StringVar(&fl.Until, "until", "", "up to this time, same forms as --since")
	fs.StringVar(&fl.Event, "event", "", "only firings that matched this event id (meta.uuid)")
	fs.IntVar(&fl.Limit, "limit", 100, "at most this many firings, newest first (0: all)")
	format := fs.String("format", "table", "table or json (one JSON object per line)")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	filter, err := dispatch.ParseFilter(fl, time.Now())
	if err != nil {
		return err
	}
	if *format != "table" && *format != "json" {
		return fmt.Errorf("--format: want table or json, got %q", *format)
	}
	store, err := journal.Open(journal.Options{Dir: *dataDir, Log: discardLog()})
	if err != nil {
		return fmt.Errorf("open data dir %s: %w", *dataDir, err)
	}
	defer store.Close()
	entries, err := store.Actions().Query(context.Background(), filter)
	if err != nil {
		return err
	}
	return dispatch.WriteAudit(stdout, *format, entries)
}
