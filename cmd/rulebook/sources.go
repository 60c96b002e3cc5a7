package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
)

// gate sits between the sources and the journal. Closing it makes every
// Emit fail with engine.ErrClosed, which HTTP sources answer with 503 and
// Retry-After: on shutdown intake stops before anything else does. close
// waits for the Emits already under way, so once it returns every event a
// sender was (or will be) told was accepted is in the journal, and draining
// the journal processes all of them.
type gate struct {
	inner  engine.Emitter
	log    zerolog.Logger
	mu     sync.RWMutex // held for reading by each Emit
	closed bool
	// onEmit, when set, sees each call's outcomes (metrics).
	onEmit func(src engine.SourceRef, outcomes []engine.Outcome, err error)
}

func (g *gate) Emit(ctx context.Context, src engine.SourceRef, entries []engine.Entry) ([]engine.Outcome, error) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		return nil, engine.ErrClosed
	}
	out, err := g.inner.Emit(ctx, src, entries)
	if g.onEmit != nil {
		g.onEmit(src, out, err)
	}
	if err == nil && g.log.Debug().Enabled() {
		for i, o := range out {
			g.log.Debug().Str("ruleset", src.Ruleset).Str("source", src.Name).Str("event_id", engine.EventID(entries[i].Event)).
				Str("outcome", o.String()).Msg("event received")
		}
	}
	return out, err
}

// Position implements engine.PositionReader when the journal does, so
// sources resume after their last durable event.
func (g *gate) Position(ctx context.Context, src engine.SourceRef) (string, error) {
	return engine.LastPosition(ctx, g.inner, src)
}

// Pace forwards to the inner Emitter (engine.Pacer).
func (g *gate) Pace(ctx context.Context, n int) error { return engine.Pace(ctx, g.inner, n) }

var _ engine.BacklogProbe = (*gate)(nil)

// BacklogFull implements engine.BacklogProbe for the journal behind the
// gate; a refusal counts like one of Emit.
func (g *gate) BacklogFull(src engine.SourceRef) *engine.BacklogError {
	p, ok := g.inner.(engine.BacklogProbe)
	if !ok {
		return nil
	}
	be := p.BacklogFull(src)
	if be != nil && g.onEmit != nil {
		g.onEmit(src, nil, be)
	}
	return be
}

func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// sourceSet runs the rulebook's sources and, on reload, stops the ones that
// changed or went away and starts the new ones, leaving unchanged sources
// (and their listeners and consumer groups) alone.
type sourceSet struct {
	reg   *engine.Registry
	out   engine.Emitter
	clock engine.Clock
	log   zerolog.Logger

	mu      sync.Mutex
	running map[string]*runningSource
	wg      sync.WaitGroup
	errs    chan error
	// ended is closed once every source started so far has returned on its
	// own (finite sources: range, generic, file).
	ended    chan struct{}
	live     int
	endedSet bool
	// starting is true while startMissing runs: a source that ends at once
	// (a range of 0) must not end the run before the others have started.
	starting bool
	// ranOut is set when a source returned on its own.
	ranOut bool
}

type runningSource struct {
	cfg    engine.SourceConfig
	src    engine.Source
	fp     string
	cancel context.CancelFunc
	done   chan struct{}
}

func newSourceSet(reg *engine.Registry, out engine.Emitter, clock engine.Clock, log zerolog.Logger) *sourceSet {
	return &sourceSet{reg: reg, out: out, clock: clock, log: log, running: map[string]*runningSource{},
		errs: make(chan error, 16), ended: make(chan struct{})}
}

func sourceKey(c engine.SourceConfig) string { return c.Ruleset + "\x00" + c.Name }

func sourceFingerprint(c engine.SourceConfig) string {
	b, _ := json.Marshal(map[string]any{"type": c.Type, "args": c.Args, "filters": c.Filters})
	return string(b)
}

func desiredSources(rulesets []*engine.Ruleset) map[string]engine.SourceConfig {
	out := map[string]engine.SourceConfig{}
	for _, rs := range rulesets {
		for _, c := range rs.Sources {
			out[sourceKey(c)] = c
		}
	}
	return out
}

// stopStale stops running sources that are not wanted as they are, and
// waits for them (an HTTP source answers its requests in flight first).
func (s *sourceSet) stopStale(want map[string]engine.SourceConfig) {
	s.mu.Lock()
	var stopping []*runningSource
	for k, r := range s.running {
		if c, ok := want[k]; ok && sourceFingerprint(c) == r.fp {
			continue
		}
		r.cancel()
		stopping = append(stopping, r)
		delete(s.running, k)
	}
	s.mu.Unlock()
	for _, r := range stopping {
		<-r.done
		s.log.Info().Str("source", r.cfg.Name).Str("ruleset", r.cfg.Ruleset).Msg("source stopped")
	}
}

// startMissing builds and starts every wanted source that is not running.
// Secrets in the arguments are resolved here, just before the source needs
// them.
func (s *sourceSet) startMissing(want map[string]engine.SourceConfig) error {
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s.mu.Lock()
	s.starting = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.starting = false
		s.checkEnded()
		s.mu.Unlock()
	}()
	for _, k := range keys {
		s.mu.Lock()
		_, running := s.running[k]
		s.mu.Unlock()
		if running {
			continue
		}
		c := want[k]
		spec, ok := s.reg.Source(c.Type)
		if !ok {
			return fmt.Errorf("ruleset %q: unknown source type %q", c.Ruleset, c.Type)
		}
		resolved, _, err := engine.ResolveSecrets(c.Args)
		if err != nil {
			return fmt.Errorf("ruleset %q: source %q: %w", c.Ruleset, c.Name, err)
		}
		built := c
		built.Args, _ = resolved.(map[string]any)
		built.Clock = s.clock
		built.Log = s.log.With().Str("source", c.Name).Str("ruleset", c.Ruleset).Logger()
		src, err := spec.New(built)
		if err != nil {
			return fmt.Errorf("ruleset %q: source %q: %w", c.Ruleset, c.Name, err)
		}
		chain, err := (&engine.Compiler{Clock: s.clock}).CompileFilters(c.Filters)
		if err != nil {
			return fmt.Errorf("ruleset %q: source %q: %w", c.Ruleset, c.Name, err)
		}
		out := engine.FilterEmitter(s.out, chain.WithLog(built.Log))
		ctx, cancel := context.WithCancel(context.Background())
		r := &runningSource{cfg: c, src: src, fp: sourceFingerprint(c), cancel: cancel, done: make(chan struct{})}
		s.mu.Lock()
		s.running[k] = r
		s.live++
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer close(r.done)
			err := src.Run(ctx, out)
			if err != nil && ctx.Err() == nil {
				select {
				case s.errs <- fmt.Errorf("source %q of ruleset %q: %w", c.Name, c.Ruleset, err):
				default:
				}
			}
			s.mu.Lock()
			s.live--
			if ctx.Err() == nil {
				s.ranOut = true
				s.checkEnded()
			}
			s.mu.Unlock()
		}()
		s.log.Info().Str("source", c.Name).Str("ruleset", c.Ruleset).Str("type", c.Type).Msg("source started")
	}
	return nil
}

// checkEnded closes ended once every source started has returned on its
// own and none is being started. Called with s.mu held.
func (s *sourceSet) checkEnded() {
	if s.live == 0 && s.ranOut && !s.starting && !s.endedSet {
		s.endedSet = true
		close(s.ended)
	}
}

// stopAll stops every source and waits for them.
func (s *sourceSet) stopAll() {
	s.stopStale(nil)
	s.wg.Wait()
}

// each calls fn for every running source.
func (s *sourceSet) each(fn func(engine.SourceConfig, engine.Source)) {
	s.mu.Lock()
	running := make([]*runningSource, 0, len(s.running))
	for _, r := range s.running {
		running = append(running, r)
	}
	s.mu.Unlock()
	for _, r := range running {
		fn(r.cfg, r.src)
	}
}

// count is how many sources run.
func (s *sourceSet) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.running)
}
