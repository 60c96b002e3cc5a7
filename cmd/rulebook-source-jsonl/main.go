// Command rulebook-source-jsonl is a first-party source plugin, written with
// plugins/sdk as any plugin author would: it follows a JSON-lines file (one
// JSON object per line, appended by some other program) and emits one event
// per line, `event.line` holding the object. The position of each event is
// the byte offset after its line, so after a crash of the plugin or a
// restart of the engine it resumes exactly after the last durable line.
//
// Put the binary in a plugins directory and use it as a source:
//
//	sources:
//	  - name: audit_log
//	    jsonl:
//	      path: /var/log/app/audit.jsonl
//	      poll_interval: 500ms
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/rulebook-dev/rulebook/plugins/sdk"
)

var info = sdk.SourceInfo{
	Name:        "jsonl",
	Version:     "1.0.0",
	Description: "follows a JSON-lines file: one event per line, resuming after the last durable line",
	Schema: `{
		"type": "object",
		"required": ["path"],
		"additionalProperties": false,
		"properties": {
			"path": {"type": "string", "minLength": 1, "description": "the file to follow"},
			"follow": {"type": "boolean", "description": "keep reading as the file grows (default true); false stops at its end"},
			"poll_interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m)$", "description": "how often to look for new lines (default 1s)"}
		}
	}`,
}

func main() { sdk.ServeSource(info, run) }

// run emits the lines of args.path after the offset resumeFrom.
func run(ctx context.Context, args map[string]any, resumeFrom string, emit sdk.EmitFunc) error {
	path, _ := args["path"].(string)
	follow := true
	if f, ok := args["follow"].(bool); ok {
		follow = f
	}
	poll := time.Second
	if s, ok := args["poll_interval"].(string); ok {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return fmt.Errorf("poll_interval: %q is not a duration", s)
		}
		poll = d
	}
	var offset int64
	if resumeFrom != "" {
		n, err := strconv.ParseInt(resumeFrom, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("resume position %q is not a byte offset", resumeFrom)
		}
		offset = n
	}
	log := sdk.Logger().With("path", path)
	log.Info("following", "offset", offset)
	for {
		n, err := readFrom(ctx, path, offset, emit)
		offset = n
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if !follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
}

// readFrom emits every complete line after offset and returns the offset
// after the last one emitted. A line not yet ended by a newline is left
// for the next read.
func readFrom(ctx context.Context, path string, offset int64, emit sdk.EmitFunc) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return offset, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() < offset {
		sdk.Logger().Warn("file is shorter than the resume offset (truncated or replaced): reading from its start", "path", path, "offset", offset)
		offset = 0
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return offset, err
	}
	r := bufio.NewReader(f)
	for ctx.Err() == nil {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			return offset, nil // an unfinished line waits
		}
		if err != nil {
			return offset, err
		}
		next := offset + int64(len(line))
		var obj map[string]any
		if jerr := json.Unmarshal(line, &obj); jerr != nil || obj == nil {
			sdk.Logger().Warn("line is not a JSON object: skipped", "offset", offset)
			offset = next
			continue
		}
		if err := emit(map[string]any{"line": obj, "offset": offset}, strconv.FormatInt(next, 10)); err != nil {
			return offset, nil // the run is ending
		}
		offset = next
	}
	return offset, nil
}
