// Package backtest replays the events a data directory's journal recorded
// through a rulebook, in virtual time with every action shadowed, and
// compares the firings of two rulebooks: what a rulebook change would have
// done on real past events.
package backtest

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/journal"
)

// snapshotAttempts bounds how often a copy of a live journal is retried
// when the running engine removed a file (a compaction, a flushed WAL)
// while it was being copied.
const snapshotAttempts = 5

// Snapshot is a private copy of a data directory's journal: the original
// is never written to (Pebble would replay and rewrite its log on open), and
// the copy can be taken while an engine holds the original.
type Snapshot struct {
	dir   string
	store *journal.Store
}

// OpenSnapshot copies <dataDir>/journal into a temporary directory and
// opens the copy. Pebble's tables are immutable, so a copy taken while the
// engine runs is a consistent state as long as every file listed was still
// there: the manifest is copied first, then the tables, then the logs, and
// the whole copy is retried when one had gone. Close removes the copy.
func OpenSnapshot(dataDir string) (*Snapshot, error) {
	src := filepath.Join(dataDir, "journal")
	if _, err := os.Stat(src); err != nil {
		return nil, fmt.Errorf("backtest: data dir %q has no journal: %w", dataDir, err)
	}
	var lastErr error
	for attempt := 0; attempt < snapshotAttempts; attempt++ {
		tmp, err := os.MkdirTemp("", "rulebook-backtest-")
		if err != nil {
			return nil, fmt.Errorf("backtest: %w", err)
		}
		dst := filepath.Join(tmp, "journal")
		err = copyJournal(src, dst)
		if err == nil {
			var st *journal.Store
			st, err = journal.Open(journal.Options{Dir: tmp, MaxBacklog: -1, Log: zerolog.Nop()})
			if err == nil {
				return &Snapshot{dir: tmp, store: st}, nil
			}
		}
		_ = os.RemoveAll(tmp)
		lastErr = err
	}
	return nil, fmt.Errorf("backtest: copy the journal of %q: %w", dataDir, lastErr)
}

// copyJournal copies Pebble's files from src to dst, metadata first and
// write-ahead logs last, without the LOCK file.
func copyJournal(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	rank := func(name string) int {
		switch {
		case name == "CURRENT" || strings.HasPrefix(name, "MANIFEST") || strings.HasPrefix(name, "marker."):
			return 0
		case strings.HasSuffix(name, ".log"):
			return 2
		default:
			return 1
		}
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() || e.Name() == "LOCK" {
			continue
		}
		names = append(names, e.Name())
	}
	sort.SliceStable(names, func(i, j int) bool { return rank(names[i]) < rank(names[j]) })
	for _, n := range names {
		if err := copyFile(filepath.Join(src, n), filepath.Join(dst, n)); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Records returns the recorded events accepted at or after since, in
// journal order (the order the engine processed them).
func (s *Snapshot) Records(ctx context.Context, since time.Time) ([]engine.Record, error) {
	after := uint64(0)
	if !since.IsZero() {
		first, err := s.store.SeqSince(ctx, since)
		if err != nil {
			return nil, fmt.Errorf("backtest: %w", err)
		}
		if first > 0 {
			after = first - 1
		}
	}
	last := s.store.LastSeq()
	var out []engine.Record
	for after < last {
		recs, err := s.store.Read(ctx, after, 1024)
		if err != nil {
			return nil, fmt.Errorf("backtest: read the journal: %w", err)
		}
		for _, r := range recs {
			if r.Seq > last {
				break
			}
			if !since.IsZero() && r.Accepted.Before(since) {
				continue
			}
			out = append(out, r)
		}
		after = recs[len(recs)-1].Seq
	}
	return out, nil
}

// Close closes and removes the copy.
func (s *Snapshot) Close() error {
	err := s.store.Close()
	if rerr := os.RemoveAll(s.dir); err == nil {
		err = rerr
	}
	return err
}

// Actions is the copy's action store: its audit trail, as of the copy.
func (s *Snapshot) Actions() engine.ActionStore { return s.store.Actions() }
