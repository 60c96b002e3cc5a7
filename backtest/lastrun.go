package backtest

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
	"unicode/utf8"
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
	lr := LastRun{Path: abs, SHA256: hex.EncodeToString(sum[:]), Saved: now.UTC()}
	if old, err := ReadLastRun(dataDir); err == nil && old.SHA256 == lr.SHA256 && old.Path == lr.Path {
		return nil
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return fmt.Errorf("record the rulebook run: %w", err)
	}
	tmp, err := os.CreateTemp(dataDir, LastRunFile+".tmp*")
	if err != nil {
		return fmt.Errorf("record the rulebook run: %w", err)
	}
	werr := writeLastRun(tmp, abs, lr.SHA256, lr.Saved, text)
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

// writeLastRun writes the LastRun of text to w as compact JSON, the text
// streamed and escaped as json.Marshal escapes a string (less <, > and
// &, which conditions are full of): encoding/json built the record of a
// 1 MB rulebook in 3-4 MB of buffers, and their allocation, page faults
// and collector assists took 20-25 ms of CPU at every start, beside the
// engine being built.
func writeLastRun(w io.Writer, path, sum string, saved time.Time, text []byte) error {
	head, err := json.Marshal(struct {
		Path   string    `json:"path"`
		SHA256 string    `json:"sha256"`
		Saved  time.Time `json:"saved"`
	}{path, sum, saved})
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.Write(head[:len(head)-1]) // without its }
	bw.WriteString(`,"text":`)
	writeJSONString(bw, text)
	bw.WriteString("}\n")
	return bw.Flush()
}

// writeJSONString writes s as a JSON string as encoding/json does with
// SetEscapeHTML(false): the quote, the backslash and control characters
// escaped, invalid UTF-8 as \ufffd, U+2028 and U+2029 as escapes.
func writeJSONString(w *bufio.Writer, s []byte) {
	const hex = "0123456789abcdef"
	w.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			w.Write(s[start:i])
			switch c {
			case '"', '\\':
				w.WriteByte('\\')
				w.WriteByte(c)
			case '\b':
				w.WriteString(`\b`)
			case '\f':
				w.WriteString(`\f`)
			case '\n':
				w.WriteString(`\n`)
			case '\r':
				w.WriteString(`\r`)
			case '\t':
				w.WriteString(`\t`)
			default:
				w.WriteString(`\u00`)
				w.WriteByte(hex[c>>4])
				w.WriteByte(hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			w.Write(s[start:i])
			w.WriteString(`\ufffd`)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			w.Write(s[start:i])
			w.WriteString(`\u202`)
			w.WriteByte(hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	w.Write(s[start:])
	w.WriteByte('"')
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
