package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/rulebook-dev/rulebook/backtest"
	"github.com/rulebook-dev/rulebook/dispatch"
)

func cmdBacktest(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("backtest", "backtest NEW.yml [--data-dir DIR] [--since 24h] [--against OLD.yml] [--fail-on-diff] [--format text|json]", stderr)
	dataDir := fs.String("data-dir", "./data", "`DIR` whose journal holds the recorded events (copied, never written; the engine may be running)")
	since := fs.String("since", "24h", "replay events accepted from this time: RFC 3339, a date, or a duration back from now (90m, 24h, 7d); empty: all the journal keeps")
	against := fs.String("against", "", "compare with this rulebook `FILE` (default: the rulebook the data dir last ran)")
	failOnDiff := fs.Bool("fail-on-diff", false, "exit with status 1 when the firings differ")
	format := fs.String("format", "text", "text or json")
	vars := addVarsFlags(fs)
	pluginDirs := addPluginFlags(fs)
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		fs.Usage()
		return errUsage
	}
	if err := checkFormat(*format, "text", "json"); err != nil {
		return err
	}
	newPath := rest[0]
	newText, err := os.ReadFile(newPath)
	if err != nil {
		return err
	}
	now := time.Now()
	f, err := dispatch.ParseFilter(dispatch.FilterFlags{Since: *since}, now)
	if err != nil {
		return err
	}
	extra, err := vars.load()
	if err != nil {
		return err
	}
	oldPath, oldText, oldWhat := "", []byte(nil), ""
	if *against != "" {
		if oldText, err = os.ReadFile(*against); err != nil {
			return err
		}
		oldPath, oldWhat = *against, *against
	} else {
		lr, err := backtest.ReadLastRun(*dataDir)
		switch {
		case errors.Is(err, backtest.ErrNoLastRun):
			fmt.Fprintf(stderr, "backtest: %s has no record of the rulebook it ran; printing the firings only (give --against OLD.yml to compare)\n", *dataDir)
		case err != nil:
			return err
		default:
			oldPath, oldText = lr.Path, []byte(lr.Text)
			oldWhat = fmt.Sprintf("%s as the data dir last ran it (sha256 %.12s, recorded %s)", lr.Path, lr.SHA256, lr.Saved.Format(time.RFC3339))
		}
	}

	ctx := context.Background()
	snap, err := backtest.OpenSnapshot(*dataDir)
	if err != nil {
		return err
	}
	recs, err := snap.Records(ctx, f.Since)
	if cerr := snap.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	replay := func(path string, text []byte) ([]backtest.Firing, error) {
		reg, closeReg, err := newRegistry(registryOptions{rulebookPath: path, pluginDirs: *pluginDirs, log: discardLog()})
		if err != nil {
			return nil, err
		}
		defer closeReg()
		return backtest.Replay(ctx, path, text, recs, backtest.Options{Registry: reg, ExtraVars: extra, Until: now})
	}
	newFirings, err := replay(newPath, newText)
	if err != nil {
		return err
	}
	var oldFirings []backtest.Firing
	if oldText != nil {
		if _, err := os.Stat(filepath.Dir(oldPath)); err != nil {
			// The recorded path's directory is gone: resolve relative
			// paths against the new rulebook's instead.
			oldPath = filepath.Join(filepath.Dir(newPath), filepath.Base(oldPath))
		}
		if oldFirings, err = replay(oldPath, oldText); err != nil {
			return fmt.Errorf("the rulebook to compare with (%s): %w", oldWhat, err)
		}
	}
	var changes []backtest.Change
	if oldText != nil {
		changes = backtest.Diff(oldFirings, newFirings)
	}
	if *format == "json" {
		out := struct {
			Events  int               `json:"events"`
			Since   time.Time         `json:"since,omitzero"`
			Against string            `json:"against,omitempty"`
			Firings []backtest.Firing `json:"firings"`
			Changes []backtest.Change `json:"changes"`
		}{len(recs), f.Since, oldWhat, newFirings, changes}
		if out.Firings == nil {
			out.Firings = []backtest.Firing{}
		}
		if out.Changes == nil {
			out.Changes = []backtest.Change{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "replayed %d recorded events through %s: %d firings\n", len(recs), newPath, len(newFirings))
		backtest.WriteFirings(stdout, newFirings)
		if oldText != nil {
			fmt.Fprintf(stdout, "\ndifference against %s (%d firings):\n", oldWhat, len(oldFirings))
			backtest.WriteDiff(stdout, changes)
		}
	}
	if *failOnDiff && len(changes) > 0 {
		return exitError{1}
	}
	return nil
}
