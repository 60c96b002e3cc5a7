// Package filesrc is the `file` source: newline-delimited JSON from a file
// or standard input, one event per line.
package filesrc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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

// Run reads to the end of the input, then returns. A line that is not JSON
// is reported with its line number and skipped; it was never accepted.
func (f *File) Run(ctx context.Context, out engine.Emitter) error {
	var r io.Reader
	if f.path == "-" {
		r = f.stdin
	} else {
		fh, err := os.Open(f.path)
		if err != nil {
			return fmt.Errorf("file source %q: %w", f.ref.Name, err)
		}
		defer fh.Close()
		r = fh
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
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
		ev := engine.NewEvent(body, f.ref.Name, f.ref.Type, f.clock.Now())
		if _, err := engine.EmitWait(ctx, f.clock, out, f.ref, []engine.Entry{{Event: ev}}); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("file source %q: line %d: %w", f.ref.Name, line+1, err)
	}
	return nil
}
