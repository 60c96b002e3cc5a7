package backtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// LastRunFile is the file in a data directory that keeps the rulebook the
// engine last ran (`rulebook run` writes it at start and on every reload),
// so `rulebook backtest` can compare a change against it.
const LastRunFile = "rulebook.last.json"

// LastRun is the rulebook a data directory last ran.
type LastRun struct {
	// Path is where the rulebook was read from; relative paths in it
	// (playbooks, scripts) resolve against it.
	Path string `json:"path"`
	// SHA256 is the hex digest of Text.
	SHA256 string    `json:"sha256"`
	Saved  time.Time `json:"saved"`
	Text   string    `json:"text"`
}

// SaveLastRun records the text of the rulebook at path as the one dataDir
// runs. The file is replaced atomically, and left alone when it already
// holds the same text from the same path.
func SaveLastRun(dataDir, path string, text []byte, now time.Time) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("record the rulebook run: %w", err)
	}
	sum := sha256.Sum256(text)
	lr := LastRun{Path: abs, SHA256: hex.EncodeToString(sum[:]), Saved: now.UTC(), Text: string(text)}
	if old, err := ReadLastRun(dataDir); err == nil && old.SHA256 == lr.SHA256 && old.Path == lr.Path {
		return nil
	}
	// Compact, and without escaping <, > and & (conditions are full of
	// them): indenting re-scanned the whole text, 20 ms at every start
	// with a 1 MB rulebook.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(lr); err != nil {
		return fmt.Errorf("record the rulebook run: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return fmt.Errorf("record the rulebook run: %w", err)
	}
	tmp, err := os.CreateTemp(dataDir, LastRunFile+".tmp*")
	if err != nil {
		return fmt.Errorf("record the rulebook run: %w", err)
	}
	_, werr := tmp.Write(buf.Bytes())
	if err := tmp.Sync(); werr == nil {
		werr = err
	}
	if err := tmp.Close(); werr == nil {
		werr = err
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), filepath.Join(dataDir, LastRunFile))
	}
	if werr != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("record the rulebook run: %w", werr)
	}
	return nil
}

// ErrNoLastRun means the data directory has no record of a rulebook run.
var ErrNoLastRun = errors.New("the data dir has no record of the rulebook it ran (it was last run by an older rulebook, or never)")

// ReadLastRun returns the rulebook dataDir last ran.
func ReadLastRun(dataDir string) (*LastRun, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, LastRunFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoLastRun
	}
	if err != nil {
		return nil, err
	}
	var lr LastRun
	if err := json.Unmarshal(b, &lr); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dataDir, LastRunFile), err)
	}
	sum := sha256.Sum256([]byte(lr.Text))
	if hex.EncodeToString(sum[:]) != lr.SHA256 {
		return nil, fmt.Errorf("%s: the rulebook text does not match its sha256", filepath.Join(dataDir, LastRunFile))
	}
	return &lr, nil
}
