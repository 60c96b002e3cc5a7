// Package journald is the `journald` source: it follows the systemd journal,
// like ansible.eda.journald, by running `journalctl --follow
// --output=json`. Each journal entry becomes one event {"journald":
// {field: value}} with the field names lower-cased, as EDA's plugin emits
// them. The entry's cursor is stored with the event in the journal of
// Rulebook (engine.Entry.Position), and a restarted source resumes with
// `--after-cursor`: nothing lost, nothing twice. Without a stored cursor
// it starts at the end of the journal, as EDA's seeks to its tail.
//
// journalctl is run rather than libsystemd linked in: the source stays in
// pure Go (no cgo), and journalctl is where every systemd journal is.
package journald

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
)

// Type is the source type.
const Type = "journald"

// Spec registers the source as `journald`.
func Spec() engine.SourceSpec {
	return engine.SourceSpec{
		Type:        Type,
		Description: "follows the systemd journal (journalctl); resumes after the last durable entry",
		Check:       func(args map[string]any) error { _, err := parse(args); return err },
		PathArgs:    []string{"directory"},
		New: func(cfg engine.SourceConfig) (engine.Source, error) {
			s, err := parse(cfg.Args)
			if err != nil {
				return nil, err
			}
			s.ref = engine.SourceRef{Ruleset: cfg.Ruleset, Name: cfg.Name, Type: cfg.Type}
			s.clock = cfg.Clock
			if s.clock == nil {
				s.clock = engine.SystemClock{}
			}
			s.log = cfg.Log
			return s, nil
		},
		Schema: map[string]any{
			"type": "object", "additionalProperties": false, "required": []any{"match"},
			"properties": map[string]any{
				"match": map[string]any{"description": "ALL, or a journal match FIELD=value, or a list of them (journalctl's rules: different fields must all match, one field any of its values)",
					"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "array", "items": map[string]any{"type": "string"}}}},
				"delay":     map[string]any{"description": "pause after each event (seconds or a duration)"},
				"directory": map[string]any{"type": "string", "description": "read the journal files in this directory (journalctl --directory) instead of the system journal"},
			},
		},
	}
}

// Source is a running journald source.
type Source struct {
	matches   []string // journalctl match arguments; none for ALL
	delay     time.Duration
	directory string
	ref       engine.SourceRef
	clock     engine.Clock
	log       zerolog.Logger
}

var _ engine.Source = (*Source)(nil)

// fieldMatch is a journal match: a field name as journald allows them
// (upper-case letters, digits, underscores; not starting with a digit),
// "=", a value.
var fieldMatch = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`)

func parse(args map[string]any) (*Source, error) {
	s := &Source{}
	m, ok := args["match"]
	if !ok {
		return nil, engine.ArgErrorf(nil, "missing key \"match\" (ALL for every entry, or FIELD=value)")
	}
	var list []string
	switch x := m.(type) {
	case string:
		list = []string{x}
	case []any:
		for i, e := range x {
			str, ok := e.(string)
			if !ok {
				return nil, engine.ArgErrorf([]string{"match", fmt.Sprint(i)}, "want a string FIELD=value, got %T", e)
			}
			list = append(list, str)
		}
		if len(list) == 0 {
			return nil, engine.ArgErrorf([]string{"match"}, "want ALL or at least one FIELD=value")
		}
	default:
		return nil, engine.ArgErrorf([]string{"match"}, "want ALL, FIELD=value or a list of FIELD=value, got %T", m)
	}
	for i, str := range list {
		path := []string{"match"}
		if _, isList := m.([]any); isList {
			path = append(path, fmt.Sprint(i))
		}
		if str == "ALL" {
			if len(list) > 1 {
				return nil, engine.ArgErrorf(path, "ALL matches every entry: it cannot be combined with other matches")
			}
			continue
		}
		if !fieldMatch.MatchString(str) {
			return nil, engine.ArgErrorf(path, "want ALL or FIELD=value with an upper-case journal field name (PRIORITY=3, _SYSTEMD_UNIT=sshd.service), got %q", str)
		}
		s.matches = append(s.matches, str)
	}
	for k, v := range args {
		switch k {
		case "match":
		case "delay":
			d, err := engine.ParseDuration(v)
			if err != nil {
				return nil, &engine.ArgError{Path: []string{k}, Err: err}
			}
			if d < 0 {
				return nil, engine.ArgErrorf([]string{k}, "must not be negative")
			}
			s.delay = d
		case "directory":
			str, ok := v.(string)
			if !ok || str == "" {
				return nil, engine.ArgErrorf([]string{k}, "want a directory path")
			}
			s.directory = str
		default:
			return nil, engine.ArgErrorf([]string{k}, "unknown key %q (want match, delay, directory)", k)
		}
	}
	return s, nil
}

// maxBatch bounds the entries of one Emit call: entries journalctl has
// already written go together, one durable write for up to this many.
const maxBatch = 256

// args are journalctl's arguments: follow, JSON, every field in full,
// after cursor when one is stored, else from the end of the journal.
func (s *Source) args(cursor string) []string {
	a := []string{"--follow", "--output=json", "--all", "--no-pager", "--quiet"}
	if cursor != "" {
		// --follow alone shows the last 10 entries after the cursor.
		a = append(a, "--after-cursor="+cursor, "--lines=all")
	} else {
		a = append(a, "--lines=0")
	}
	if s.directory != "" {
		a = append(a, "--directory="+s.directory)
	}
	return append(a, s.matches...)
}

// Run starts journalctl and emits its entries until ctx ends. journalctl
// missing, or exiting while ctx is live (it follows forever, so it exits
// only on an error such as an unreadable directory or a bad match), is the
// source's error, with journalctl's message. A new run resumes after the
// last durable entry.
func (s *Source) Run(ctx context.Context, out engine.Emitter) error {
	bin, err := exec.LookPath("journalctl")
	if err != nil {
		return fmt.Errorf("the journald source runs journalctl (Debian/Ubuntu package systemd), which is not installed or not on PATH: %w", err)
	}
	cursor, err := engine.LastPosition(ctx, out, s.ref)
	if err != nil {
		return fmt.Errorf("read the last durable journal cursor: %w", err)
	}
	if cursor != "" {
		s.log.Info().Str("cursor", cursor).Msg("resuming after the last durable journal entry")
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(runCtx, bin, s.args(cursor)...)
	stderr := &tailBuffer{max: 4096}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("journalctl: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start journalctl: %w", err)
	}
	lines := make(chan []byte, maxBatch)
	readErr := make(chan error, 1)
	go func() {
		defer close(lines)
		br := bufio.NewReaderSize(stdout, 64<<10)
		for {
			line, err := br.ReadBytes('\n')
			if len(bytes.TrimSpace(line)) > 0 {
				select {
				case lines <- line:
				case <-runCtx.Done():
					readErr <- nil
					return
				}
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				readErr <- err
				return
			}
		}
	}()
	emitErr := s.emit(ctx, out, lines)
	cancel()
	// Drain so the reader ends, then reap journalctl.
	for range lines {
	}
	rerr := <-readErr
	werr := cmd.Wait()
	if ctx.Err() != nil {
		return nil
	}
	if emitErr != nil {
		return emitErr
	}
	if rerr != nil {
		return fmt.Errorf("read journalctl's output: %w", rerr)
	}
	msg := strings.TrimSpace(stderr.String())
	if werr == nil {
		werr = errors.New("exited")
	}
	if msg != "" {
		return fmt.Errorf("journalctl %s: %w: %s", strings.Join(s.args(cursor), " "), werr, msg)
	}
	return fmt.Errorf("journalctl %s: %w", strings.Join(s.args(cursor), " "), werr)
}

// emit turns lines into events until lines closes (journalctl ended) or
// ctx ends. Lines already read go together, up to maxBatch, unless a
// delay asks for one at a time.
func (s *Source) emit(ctx context.Context, out engine.Emitter, lines <-chan []byte) error {
	batch := make([]engine.Entry, 0, maxBatch)
	per := maxBatch
	if s.delay > 0 {
		per = 1
	}
	for {
		var line []byte
		var ok bool
		select {
		case line, ok = <-lines:
		case <-ctx.Done():
			return nil
		}
		if !ok {
			return nil
		}
		batch = s.add(batch, line)
	more:
		for len(batch) < per {
			select {
			case line, ok = <-lines:
				if !ok {
					break more
				}
				batch = s.add(batch, line)
			default:
				break more
			}
		}
		if len(batch) > 0 {
			if _, err := engine.EmitPaced(ctx, s.clock, out, s.ref, batch); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
		clear(batch)
		batch = batch[:0]
		if s.delay > 0 && !engine.Sleep(ctx, s.clock, s.delay) {
			return nil
		}
		if !ok {
			return nil
		}
	}
}

// add appends the entry of one journalctl JSON line. A line that is not a
// JSON object is logged and skipped: journalctl writes none, and holding
// up every later entry for it would help no one.
func (s *Source) add(batch []engine.Entry, line []byte) []engine.Entry {
	var fields map[string]any
	if err := json.Unmarshal(line, &fields); err != nil {
		s.log.Error().Err(err).Int("bytes", len(line)).Msg("journalctl wrote a line that is not a JSON object: skipped")
		return batch
	}
	body := make(map[string]any, len(fields))
	for k, v := range fields {
		body[strings.ToLower(k)] = value(v)
	}
	cursor, _ := fields["__CURSOR"].(string)
	ev := engine.NewEvent(map[string]any{"journald": body}, s.ref.Name, s.ref.Type, s.clock.Now())
	return append(batch, engine.Entry{Event: ev, Position: cursor})
}

// value is a field's value as a string, as EDA's plugin gives them:
// journalctl writes text as a string, binary data as an array of byte
// values, and a field present more than once as an array of those (kept a
// list of strings here).
func value(v any) any {
	list, ok := v.([]any)
	if !ok {
		if v == nil {
			return nil
		}
		if s, ok := v.(string); ok {
			return s
		}
		return fmt.Sprint(v)
	}
	if b, ok := bytesOf(list); ok {
		return string(b)
	}
	out := make([]any, len(list))
	for i, e := range list {
		if l, ok := e.([]any); ok {
			if b, ok := bytesOf(l); ok {
				out[i] = string(b)
				continue
			}
		}
		out[i] = value(e)
	}
	return out
}

// bytesOf reads journalctl's array-of-numbers form of binary data.
func bytesOf(list []any) ([]byte, bool) {
	b := make([]byte, len(list))
	for i, e := range list {
		f, ok := e.(float64)
		if !ok || f < 0 || f > 255 || f != float64(int(f)) {
			return nil, false
		}
		b[i] = byte(f)
	}
	return b, true
}

// tailBuffer keeps the last max bytes written: journalctl's error message.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
