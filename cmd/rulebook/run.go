package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/dispatch"
	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/journal"
	"github.com/rulebook-dev/rulebook/rulebooks"
	"github.com/rulebook-dev/rulebook/sources/httpingest"
)

// runFlags are the flags of `rulebook run`.
type runFlags struct {
	vars            *varsFlags
	dataDir         string
	logFormat       string
	logLevel        string
	maxBacklog      int
	retryAfter      time.Duration
	dedupeWindow    time.Duration
	retention       time.Duration
	auditRetention  time.Duration
	maxConcurrency  int
	actionLimits    listFlag
	defaultTimeout  time.Duration
	shutdownTimeout time.Duration
	pluginDirs      *[]string
}

func addRunFlags(fs *flag.FlagSet) *runFlags {
	f := &runFlags{vars: addVarsFlags(fs)}
	fs.StringVar(&f.dataDir, "data-dir", "./data", "`DIR` of the durable journal, action queue and audit trail")
	fs.StringVar(&f.logFormat, "log-format", "auto", "log format: json, console, or auto (console on a terminal)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.IntVar(&f.maxBacklog, "max-backlog", journal.DefaultMaxBacklog, "events accepted but not yet processed before sources answer 503 with Retry-After")
	fs.DurationVar(&f.retryAfter, "retry-after", journal.DefaultRetryAfter, "Retry-After advice sent with a 503 when the backlog is full")
	fs.DurationVar(&f.dedupeWindow, "dedupe-window", journal.DefaultDedupeWindow, "how long delivery ids are remembered when a source does not say")
	fs.DurationVar(&f.retention, "retention", journal.DefaultRetention, "how long processed events are kept before compaction")
	fs.DurationVar(&f.auditRetention, "audit-retention", 30*24*time.Hour, "how long finished firings stay in the audit trail (0 keeps them)")
	fs.IntVar(&f.maxConcurrency, "max-concurrency", dispatch.DefaultMaxConcurrency, "actions running at once, in total")
	fs.Var(&f.actionLimits, "action-concurrency", "per action type limit `TYPE=N`, e.g. run_playbook=4 (repeatable)")
	fs.DurationVar(&f.defaultTimeout, "action-timeout", dispatch.DefaultTimeout, "time limit of an action attempt that sets no timeout")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGTERM/SIGINT, how long running actions may finish before they are cancelled (they resume on the next start)")
	f.pluginDirs = addPluginFlags(fs)
	return f
}

func (f *runFlags) perAction() (map[string]int, error) {
	out := map[string]int{}
	for _, kv := range f.actionLimits {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.Atoi(v)
		if !ok || k == "" || err != nil || n < 1 {
			return nil, fmt.Errorf("--action-concurrency: want TYPE=N with N >= 1, got %q", kv)
		}
		out[k] = n
	}
	return out, nil
}

func cmdRun(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("run", "run RULEBOOK [flags]", stderr)
	rf := addRunFlags(fs)
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(files) != 1 {
		fs.Usage()
		return errUsage
	}
	log, err := newLogger(stderr, rf.logFormat, rf.logLevel)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return runRulebook(ctx, files[0], rf, stdout, log)
}

// runRulebook runs one rulebook until its sources end, a shutdown action
// runs, or ctx ends (a signal).
func runRulebook(ctx context.Context, path string, rf *runFlags, stdout io.Writer, log zerolog.Logger) error {
	extra, err := rf.vars.load()
	if err != nil {
		return err
	}
	perAction, err := rf.perAction()
	if err != nil {
		return err
	}
	hub := httpingest.NewHub(httpingest.HubConfig{Log: log.With().Str("component", "http").Logger()})
	w, err := buildRegistry(registryOptions{rulebookPath: path, pluginDirs: *rf.pluginDirs,
		pluginState: filepath.Join(rf.dataDir, "plugins"), hub: hub, log: log.With().Str("component", "plugins").Logger()})
	if err != nil {
		return err
	}
	if w.host != nil {
		defer w.host.Close()
	}
	clock := engine.SystemClock{}
	rb, err := rulebooks.Load(path, rulebooks.Options{Registry: w.reg, Clock: clock, ExtraVars: extra, CheckSecrets: true})
	if err != nil {
		var list rulebooks.ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				log.Error().Str("file", e.File).Int("line", e.Line).Int("column", e.Column).Msg(e.Error())
			}
			return fmt.Errorf("%s: %d problem(s); see `rulebook validate %s`", path, len(list), path)
		}
		return err
	}

	store, err := journal.Open(journal.Options{
		Dir: rf.dataDir, MaxBacklog: rf.maxBacklog, RetryAfter: rf.retryAfter, DedupeWindow: rf.dedupeWindow,
		Retention: rf.retention, AuditRetention: rf.auditRetention, Clock: clock,
		Log: log.With().Str("component", "journal").Logger(),
	})
	if err != nil {
		return fmt.Errorf("open data dir %s: %w", rf.dataDir, err)
	}
	defer store.Close()
	if err := store.Start(ctx); err != nil {
		return err
	}

	actions, err := buildActions(w.reg, rb, rf.dataDir, log)
	if err != nil {
		return err
	}
	var eng *engine.Engine
	disp, err := dispatch.New(dispatch.Config{
		Store: store.Actions(), Actions: dispatch.ActionMap(actions),
		MaxConcurrency: rf.maxConcurrency, PerAction: perAction, DefaultTimeout: rf.defaultTimeout,
		Feedback: func(ruleset string, facts, events []map[string]any) {
			if err := eng.Inject(context.Background(), ruleset, facts, events); err != nil {
				log.Error().Err(err).Str("ruleset", ruleset).Msg("action feedback not applied")
			}
		},
		Log: log.With().Str("component", "dispatch").Logger(),
	})
	if err != nil {
		return err
	}

	shutdown := make(chan engine.ShutdownRequest, 1)
	eng = engine.New(rb.Rulesets, engine.Options{
		Clock: clock, Dispatcher: disp, Stdout: stdout,
		Log: log.With().Str("component", "engine").Logger(),
		OnShutdown: func(r engine.ShutdownRequest) {
			select {
			case shutdown <- r:
			default:
			}
		},
	})
	if err := disp.Start(ctx); err != nil {
		return err
	}

	// Sources feed the journal; the runner feeds the engine from it.
	srcCtx, stopSources := context.WithCancel(context.Background())
	defer stopSources()
	sources, err := buildSources(w.reg, rb, clock, log)
	if err != nil {
		disp.Stop(context.Background())
		return err
	}
	var srcWG sync.WaitGroup
	srcErr := make(chan error, len(sources))
	for _, s := range sources {
		srcWG.Add(1)
		go func() {
			defer srcWG.Done()
			if err := s.src.Run(srcCtx, store); err != nil {
				srcErr <- fmt.Errorf("source %q of ruleset %q: %w", s.cfg.Name, s.cfg.Ruleset, err)
			}
		}()
	}
	sourcesDone := make(chan struct{})
	go func() { srcWG.Wait(); close(sourcesDone) }()

	runCtx, stopRunner := context.WithCancel(context.Background())
	defer stopRunner()
	runner := &engine.Runner{Engine: eng, Journal: store, Log: log}
	runErr := make(chan error, 1)
	go func() { runErr <- runner.Run(runCtx) }()
	log.Info().Str("rulebook", path).Int("rulesets", len(rb.Rulesets)).Int("sources", len(sources)).Str("data_dir", rf.dataDir).Msg("running")

	var result error
	drainActions := true
	select {
	case <-ctx.Done():
		log.Info().Msg("signal received; shutting down")
	case r := <-shutdown:
		if r.Delay > 0 {
			log.Info().Dur("delay", r.Delay).Msg("shutting down after delay")
			select {
			case <-time.After(r.Delay):
			case <-ctx.Done():
			}
		}
		drainActions = !r.Now
	case err := <-srcErr:
		log.Error().Err(err).Msg("source failed; shutting down")
		result = err
	case err := <-runErr:
		if err != nil {
			log.Error().Err(err).Msg("engine stopped")
			result = err
		}
		runErr <- nil
	case <-sourcesDone:
		log.Info().Msg("all sources ended; finishing what they sent")
		// Everything the sources sent gets processed, and every action it
		// caused finishes (or a signal cuts it short).
		waitIdle(ctx, store, 50*time.Millisecond)
		waitActions(ctx, store.Actions(), 100*time.Millisecond)
	}

	// Stop intake first; what was accepted is in the journal and is processed
	// now or on the next start.
	stopSources()
	srcWG.Wait()
	drainCtx, cancelDrain := context.WithTimeout(context.Background(), rf.shutdownTimeout)
	defer cancelDrain()
	waitIdle(drainCtx, store, 20*time.Millisecond)
	stopRunner()
	if err := <-runErr; err != nil && result == nil {
		result = err
	}
	stopCtx := drainCtx
	if !drainActions {
		var c context.CancelFunc
		stopCtx, c = context.WithCancel(context.Background())
		c()
	}
	if err := disp.Stop(stopCtx); err != nil {
		log.Warn().Err(err).Msg("running actions were cancelled; they resume on the next start")
	}
	if err := hub.Stop(context.Background()); err != nil && !errors.Is(err, httpingest.ErrHubStopped) {
		log.Warn().Err(err).Msg("http listeners")
	}
	if err := store.Close(); err != nil && result == nil {
		result = err
	}
	log.Info().Msg("stopped")
	return result
}

type builtSource struct {
	cfg engine.SourceConfig
	src engine.Source
}

func buildSources(reg *engine.Registry, rb *rulebooks.Rulebook, clock engine.Clock, log zerolog.Logger) ([]builtSource, error) {
	var out []builtSource
	for _, rs := range rb.Rulesets {
		for _, cfg := range rs.Sources {
			spec, ok := reg.Source(cfg.Type)
			if !ok {
				return nil, fmt.Errorf("ruleset %q: unknown source type %q", rs.Name, cfg.Type)
			}
			resolved, _, err := engine.ResolveSecrets(cfg.Args)
			if err != nil {
				return nil, fmt.Errorf("ruleset %q: source %q: %w", rs.Name, cfg.Name, err)
			}
			cfg.Args, _ = resolved.(map[string]any)
			cfg.Clock = clock
			cfg.Log = log.With().Str("source", cfg.Name).Str("ruleset", rs.Name).Logger()
			src, err := spec.New(cfg)
			if err != nil {
				return nil, fmt.Errorf("ruleset %q: source %q: %w", rs.Name, cfg.Name, err)
			}
			out = append(out, builtSource{cfg: cfg, src: src})
		}
	}
	return out, nil
}

// buildActions builds each action type the rulebook uses, once.
func buildActions(reg *engine.Registry, rb *rulebooks.Rulebook, dataDir string, log zerolog.Logger) (map[string]engine.Action, error) {
	out := map[string]engine.Action{}
	for _, rs := range rb.Rulesets {
		for _, r := range rs.Rules {
			for _, a := range r.Actions {
				if engine.IsBuiltinAction(a.Type) || out[a.Type] != nil {
					continue
				}
				spec, ok := reg.Action(a.Type)
				if !ok {
					return nil, fmt.Errorf("%s: unknown action %q", a.Pos, a.Type)
				}
				act, err := spec.New(engine.ActionEnv{DataDir: dataDir, Log: log.With().Str("action", a.Type).Logger()})
				if err != nil {
					return nil, fmt.Errorf("%s: action %q: %w", a.Pos, a.Type, err)
				}
				out[a.Type] = act
			}
		}
	}
	return out, nil
}

// waitIdle waits until the journal has no unprocessed events or ctx ends.
func waitIdle(ctx context.Context, j engine.Journal, every time.Duration) {
	for j.Backlog() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// waitActions waits until no invocation is unfinished or ctx ends.
func waitActions(ctx context.Context, s engine.ActionStore, every time.Duration) {
	for {
		left, err := s.Unfinished(ctx)
		if err != nil || len(left) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}
