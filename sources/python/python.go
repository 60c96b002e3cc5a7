// Package python runs Event-Driven Ansible source plugins, unmodified: a
// Python file with an `async def main(queue, args)`. Each runs in a python3
// child process started through a small runner embedded in the binary
// (runner.py), which calls main with a bounded asyncio.Queue and writes each
// event the plugin puts on it as a JSON line on a private pipe. The source
// reads a line, journals the event like any other (with the usual meta),
// and reads the next one only then: a slow journal holds the plugin back
// instead of growing a queue.
//
// When main returns the source has ended, as a finite EDA source does. When
// the plugin raises or its process dies, that is a source error: it is
// logged with the last line the plugin wrote to stderr, and the plugin is
// started again after a backoff that doubles up to a bound. Everything the
// plugin writes to stderr (or prints) is logged with the source's name.
package python

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
)

//go:embed runner.py
var runnerSource string

// Defaults of Config's zero fields.
const (
	DefaultPython     = "python3"
	DefaultQueueSize  = 128
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = time.Minute
	DefaultKillGrace  = 5 * time.Second
	// MaxEventSize bounds one event's JSON line. A longer line is a source
	// error: the plugin is restarted.
	MaxEventSize = 16 << 20
	// maxBatch bounds the events journaled in one Emit.
	maxBatch = 256
)

// Spec is the source spec of the plugin file at path, under the type name
// the rulebook uses. syspath goes in front of the plugin's sys.path.
func Spec(name, path, python string, syspath []string) engine.SourceSpec {
	return engine.SourceSpec{
		Type:        name,
		Description: fmt.Sprintf("Event-Driven Ansible source plugin %s, run with python3", path),
		Check:       checkArgs,
		Schema: map[string]any{
			"type":        "object",
			"description": "the plugin's arguments, passed to main(queue, args) as a dict",
		},
		New: func(cfg engine.SourceConfig) (engine.Source, error) {
			if err := checkArgs(cfg.Args); err != nil {
				return nil, err
			}
			return New(Config{
				Name: cfg.Name, Type: cfg.Type, Ruleset: cfg.Ruleset, Path: path, Python: python,
				SysPath: syspath, Args: cfg.Args, Clock: cfg.Clock, Log: cfg.Log,
			}), nil
		},
	}
}

// checkArgs makes sure the arguments can be handed to Python as JSON.
func checkArgs(args map[string]any) error {
	if _, err := json.Marshal(args); err != nil {
		return fmt.Errorf("arguments cannot be passed to the plugin as JSON: %w", err)
	}
	return nil
}

// Config is one plugin source.
type Config struct {
	// Name, Type and Ruleset are the source's in the rulebook.
	Name, Type, Ruleset string
	// Path is the plugin file.
	Path string
	// Python is the interpreter ("" is DefaultPython, from PATH).
	Python string
	// SysPath is put in front of the plugin's sys.path.
	SysPath []string
	// Args are passed to main(queue, args), secrets resolved.
	Args map[string]any
	// Clock times the restart backoff (nil: the system clock).
	Clock engine.Clock
	Log   zerolog.Logger
	// QueueSize bounds the plugin's asyncio.Queue.
	QueueSize int
	// MinBackoff is the wait before the first restart; each further failure
	// doubles it up to MaxBackoff. A plugin that ran for MaxBackoff or more
	// before failing starts again from MinBackoff.
	MinBackoff, MaxBackoff time.Duration
	// KillGrace is how long the plugin has between SIGTERM and SIGKILL
	// when the source stops.
	KillGrace time.Duration
}

// Source runs one plugin.
type Source struct {
	cfg Config
	ref engine.SourceRef
}

var _ engine.Source = (*Source)(nil)

// New returns the source; Run starts the plugin.
func New(cfg Config) *Source {
	if cfg.Python == "" {
		cfg.Python = DefaultPython
	}
	if cfg.Clock == nil {
		cfg.Clock = engine.SystemClock{}
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	if cfg.KillGrace <= 0 {
		cfg.KillGrace = DefaultKillGrace
	}
	if cfg.Type == "" {
		cfg.Type = cfg.Name
	}
	return &Source{cfg: cfg, ref: engine.SourceRef{Ruleset: cfg.Ruleset, Name: cfg.Name, Type: cfg.Type}}
}

// errEmit marks a journal failure: the source cannot go on.
type errEmit struct{ err error }

func (e errEmit) Error() string { return e.err.Error() }
func (e errEmit) Unwrap() error { return e.err }

// Run runs the plugin until it returns (nil), ctx ends (nil) or the journal
// fails (an error). A plugin that fails is restarted after a backoff.
func (s *Source) Run(ctx context.Context, out engine.Emitter) error {
	log := s.cfg.Log
	backoff := s.cfg.MinBackoff
	for {
		start := s.cfg.Clock.Now()
		err := s.runOnce(ctx, out)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			log.Info().Str("plugin", s.cfg.Path).Msg("source plugin ended")
			return nil
		}
		var ee errEmit
		if errors.As(err, &ee) || errors.Is(err, exec.ErrNotFound) {
			return err // the journal failed, or there is no interpreter
		}
		if s.cfg.Clock.Now().Sub(start) >= s.cfg.MaxBackoff {
			backoff = s.cfg.MinBackoff
		}
		log.Error().Err(err).Str("plugin", s.cfg.Path).Dur("restart_in", backoff).Msg("source plugin failed")
		if !engine.Sleep(ctx, s.cfg.Clock, backoff) {
			return nil
		}
		backoff = min(2*backoff, s.cfg.MaxBackoff)
	}
}

// runOnce runs the plugin process once. It returns nil when main returned,
// an errEmit when the journal failed, and another error when the plugin
// failed.
func (s *Source) runOnce(ctx context.Context, out engine.Emitter) error {
	args, err := json.Marshal(s.cfg.Args)
	if err != nil {
		return errEmit{fmt.Errorf("arguments: %w", err)}
	}
	if s.cfg.Args == nil {
		args = []byte("{}")
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	argv := append([]string{"-c", runnerSource, s.cfg.Path, "3", strconv.Itoa(s.cfg.QueueSize)}, s.cfg.SysPath...)
	cmd := exec.Command(s.cfg.Python, argv...)
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
	cmd.Stdin = bytes.NewReader(append(args, '\n'))
	stderr := &lineLog{log: s.cfg.Log}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	cmd.ExtraFiles = []*os.File{pw}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = s.cfg.KillGrace
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return fmt.Errorf("start %s (set RULEBOOK_PYTHON to use another interpreter): %w", s.cfg.Python, err)
	}
	pw.Close()
	s.cfg.Log.Debug().Str("plugin", s.cfg.Path).Int("pid", cmd.Process.Pid).Msg("source plugin started")

	// Stop: SIGTERM to the plugin's process group (main is cancelled), then
	// SIGKILL after the grace period.
	stopped := make(chan struct{})
	var stopOnce sync.Once
	stop := func() { stopOnce.Do(func() { close(stopped) }) }
	exited := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-stopped:
		case <-exited:
			return
		}
		pgid := -cmd.Process.Pid
		_ = syscall.Kill(pgid, syscall.SIGTERM)
		t := time.NewTimer(s.cfg.KillGrace)
		defer t.Stop()
		select {
		case <-exited:
		case <-t.C:
			_ = syscall.Kill(pgid, syscall.SIGKILL)
		}
	}()

	readErr := s.forward(ctx, pr, out)
	if readErr != nil {
		stop()
	}
	pr.Close() // a plugin still writing gets EPIPE
	waitErr := cmd.Wait()
	close(exited)
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // what the plugin left behind
	switch {
	case ctx.Err() != nil:
		return nil
	case readErr != nil:
		return readErr
	case waitErr != nil:
		if last := stderr.last(); last != "" {
			return fmt.Errorf("%w: %s", waitErr, last)
		}
		return waitErr
	}
	return nil
}

// forward reads the plugin's events and journals them. It returns nil at the
// end of the stream, an errEmit when the journal fails, another error when
// the stream is bad.
func (s *Source) forward(ctx context.Context, r io.Reader, out engine.Emitter) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var batch []engine.Entry
	var line []byte
	for {
		if ctx.Err() != nil {
			return nil // stopping: what the plugin still writes is not taken
		}
		batch = batch[:0]
		for len(batch) < maxBatch {
			var err error
			line, err = readLine(br, line[:0])
			if errors.Is(err, io.EOF) {
				if len(batch) > 0 {
					return s.emit(ctx, out, batch)
				}
				return nil
			}
			if err != nil {
				return err
			}
			if ev, ok := s.decode(line); ok {
				batch = append(batch, engine.Entry{Event: ev})
			}
			if br.Buffered() == 0 {
				break // journal what came so far, then wait for more
			}
		}
		if len(batch) > 0 {
			if err := s.emit(ctx, out, batch); err != nil {
				return err
			}
		}
	}
}

func (s *Source) emit(ctx context.Context, out engine.Emitter, batch []engine.Entry) error {
	if _, err := engine.EmitWait(ctx, s.cfg.Clock, out, s.ref, batch); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return errEmit{fmt.Errorf("journal: %w", err)}
	}
	return nil
}

// decode turns one line into an event; a line that is not a JSON object is
// logged and skipped (the runner only writes mappings).
func (s *Source) decode(line []byte) (engine.Event, bool) {
	var body map[string]any
	if err := json.Unmarshal(line, &body); err != nil || body == nil {
		s.cfg.Log.Error().Str("plugin", s.cfg.Path).Int("bytes", len(line)).Msg("source plugin wrote an event that is not a JSON object; skipped")
		return nil, false
	}
	return engine.NewEvent(body, s.ref.Name, s.ref.Type, s.cfg.Clock.Now()), true
}

// readLine reads one line without its newline, up to MaxEventSize bytes. A
// last line without a newline is still a line.
func readLine(br *bufio.Reader, buf []byte) ([]byte, error) {
	for {
		chunk, err := br.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > MaxEventSize {
			return nil, fmt.Errorf("an event is larger than %d bytes", MaxEventSize)
		}
		switch {
		case err == nil:
			return buf[:len(buf)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(buf) > 0:
			return buf, nil
		default:
			return nil, err
		}
	}
}

// lineLog logs what the plugin writes to stderr (and stdout), one entry a
// line, and keeps the last line for the error of a failed run.
type lineLog struct {
	log     zerolog.Logger
	mu      sync.Mutex
	partial []byte
	lastMsg string
}

// maxLogLine bounds one logged line.
const maxLogLine = 8 << 10

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			if len(l.partial) > maxLogLine {
				l.emit(l.partial)
				l.partial = l.partial[:0]
			}
			return len(p), nil
		}
		l.emit(l.partial[:i])
		l.partial = l.partial[i+1:]
	}
}

func (l *lineLog) emit(line []byte) {
	line = bytes.TrimRight(line, "\r")
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	if len(line) > maxLogLine {
		line = line[:maxLogLine]
	}
	s := string(line)
	l.lastMsg = s
	l.log.Warn().Str("stderr", s).Msg("source plugin output")
}

func (l *lineLog) last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(bytes.TrimSpace(l.partial)) > 0 {
		l.emit(l.partial)
		l.partial = l.partial[:0]
	}
	return l.lastMsg
}
