// Package filesrc is the `file` source: newline-delimited JSON from a file
// or standard input, one event per line.
package filesrc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"os"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
)

// Spec registers the source as `file`. Stdin is where "-" reads from.
func Spec(stdin io.Reader) engine.SourceSpec {
	return engine.SourceSpec{
		Type:        "file",
		Description: "reads newline-delimited JSON events from a file or stdin (path: -)",
		Check:       func(args map[string]any) error { _, err := parse(args); return err },
		New: func(cfg engine.SourceConfig) (engine.Source, error) {
			path, err := parse(cfg.Args)
			if err != nil {
				return nil, err
			}
			return &File{path: path, stdin: stdin, clock: cfg.Clock, log: cfg.Log,
				ref: engine.SourceRef{Ruleset: cfg.Ruleset, Name: cfg.Name, Type: cfg.Type}}, nil
		},
		Schema: map[string]any{
			"type": "object", "additionalProperties": false, "required": []any{"path"},
			"properties": map[string]any{
				"path": map[string]any{"type": "string", "description": "NDJSON file, or - for standard input"},
			},
		},
	}
}

// File is a running file source.
type File struct {
	path  string
	stdin io.Reader
	ref   engine.SourceRef
	clock engine.Clock
	log   zerolog.Logger
}

var _ engine.Source = (*File)(nil)

func parse(args map[string]any) (string, error) {
	var path string
	for k, v := range args {
		switch k {
		case "path":
			s, ok := v.(string)
			if !ok || s == "" {
				return "", engine.ArgErrorf([]string{k}, "want a file path or -")
			}
			path = s
		default:
			return "", engine.ArgErrorf([]string{k}, "unknown key %q (want path)", k)
		}
	}
	if path == "" {
		return "", engine.ArgErrorf(nil, "missing key \"path\"")
	}
	return path, nil
}

// maxBatch bounds the lines emitted in one Emit call: one durable write
// (one fsync, shared with whatever else is committing) for up to this many
// events, instead of one per line.
const maxBatch = 512

// maxLine is the longest line accepted; a longer one ends the run with an
// error naming its line.
const maxLine = 16 << 20

// Run reads to the end of the input, then returns. A line that is not JSON
// is reported with its line number and skipped; it was never accepted.
//
// Lines are emitted in batches: up to maxBatch lines, and never more than
// what the input has already delivered, so that a line from a slow pipe is
// not held back waiting for the next. A batch is stored atomically before
// the next is read.
//
// Reading a file (not stdin) resumes: every line carries a dedupe key made
// of its byte offset (fixed width) and a hash of the path and its content, so after a
// crash or a stop the lines the journal accepted before are Duplicates and
// only the rest is processed, exactly once. This holds within the journal's
// dedupe window (--dedupe-window, default 24 h); reading a file again with
// other content at the same offsets processes the changed lines.
func (f *File) Run(ctx context.Context, out engine.Emitter) error {
	var r io.Reader
	resume := f.path != "-"
	if !resume {
		r = f.stdin
	} else {
		fh, err := os.Open(f.path)
		if err != nil {
			return fmt.Errorf("file source %q: %w", f.ref.Name, err)
		}
		defer fh.Close()
		r = fh
	}
	rd := bufio.NewReaderSize(r, 64*1024)
	batch := make([]engine.Entry, 0, maxBatch)
	var accepted, skipped int
	flush := func() error {
		res, err := engine.EmitPaced(ctx, f.clock, out, f.ref, batch)
		if err != nil {
			return err
		}
		for _, o := range res {
			if o == engine.Accepted {
				accepted++
			} else {
				skipped++
			}
		}
		clear(batch)
		batch = batch[:0]
		return nil
	}
	var (
		line   int
		offset int64 // of the next line
		long   []byte
	)
	for {
		if len(batch) > 0 && (len(batch) >= maxBatch || !lineBuffered(rd)) {
			if err := flush(); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
		text, err := readLine(rd, &long)
		if err == io.EOF && len(text) == 0 {
			break
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("file source %q: line %d: %w", f.ref.Name, line+1, err)
		}
		line++
		start := offset
		offset += int64(len(text))
		text = bytes.TrimSpace(text)
		if len(text) == 0 {
			continue
		}
		var v any
		if err := json.Unmarshal(text, &v); err != nil {
			f.log.Error().Str("path", f.path).Int("line", line).Err(err).Msg("line is not JSON; skipped")
			continue
		}
		body, ok := v.(map[string]any)
		if !ok {
			body = map[string]any{"payload": v}
		}
		e := engine.Entry{Event: engine.NewEvent(body, f.ref.Name, f.ref.Type, f.clock.Now())}
		if resume {
			e.DedupeKey = lineKey(f.path, start, text)
		}
		batch = append(batch, e)
	}
	if len(batch) > 0 {
		if err := flush(); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	if skipped > 0 {
		f.log.Info().Str("path", f.path).Int("accepted", accepted).Int("skipped", skipped).
			Msg("resumed: lines accepted before were skipped")
	}
	return nil
}

// lineBuffered reports whether rd holds a whole line already, so that
// reading it cannot block.
func lineBuffered(rd *bufio.Reader) bool {
	b, _ := rd.Peek(rd.Buffered())
	return bytes.IndexByte(b, '\n') >= 0
}

// readLine returns the next line with its newline (the last line may lack
// one), or io.EOF at the end. The slice is valid until the next call; long
// holds the lines longer than rd's buffer.
func readLine(rd *bufio.Reader, long *[]byte) ([]byte, error) {
	b, err := rd.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		return b, err
	}
	*long = append((*long)[:0], b...)
	for err == bufio.ErrBufferFull {
		if len(*long) > maxLine {
			return nil, fmt.Errorf("line longer than %d bytes", maxLine)
		}
		b, err = rd.ReadSlice('\n')
		*long = append(*long, b...)
	}
	if len(*long) > maxLine {
		return nil, fmt.Errorf("line longer than %d bytes", maxLine)
	}
	return *long, err
}

// hexWidth writes v as len(dst) hexadecimal digits.
func hexWidth(dst []byte, v uint64) {
	const digits = "0123456789abcdef"
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = digits[v&15]
		v >>= 4
	}
}

// lineKey identifies a line of a file for the journal's dedupe: its byte
// offset and a hash of the path and the line.
func lineKey(path string, offset int64, text []byte) string {
	h := fnv.New64a()
	h.Write([]byte(path))
	h.Write([]byte{0})
	h.Write(text)
	// Fixed width, so that the keys of a file sort by offset: a new key
	// is past the range of the journal's older tables and its lookup
	// skips them.
	var b [33]byte
	hexWidth(b[:16], uint64(offset))
	b[16] = ':'
	hexWidth(b[17:], h.Sum64())
	return string(b[:])
}
