package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/admin"
	"github.com/rulebook-dev/rulebook/backtest"
	"github.com/rulebook-dev/rulebook/bus"
	"github.com/rulebook-dev/rulebook/dispatch"
	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/journal"
	"github.com/rulebook-dev/rulebook/kafkaconn"
	"github.com/rulebook-dev/rulebook/metrics"
	"github.com/rulebook-dev/rulebook/rulebooks"
	"github.com/rulebook-dev/rulebook/sources/httpingest"
)

// runFlags are the flags of `rulebook run`.
type runFlags struct {
	vars            *varsFlags
	sourceDirs      *[]string        // EDA Python source plugins (-S)
	controller      *controllerFlags // AWX for run_job_template
	dataDir         string
	logFormat       string
	logLevel        string
	maxBacklog      int
	maxBacklogBytes int64
	retryAfter      time.Duration
	dedupeWindow    time.Duration
	retention       time.Duration
	auditRetention  time.Duration
	maxConcurrency  int
	actionLimits    listFlag
	defaultTimeout  time.Duration
	shutdownTimeout time.Duration
	watch           bool
	busURL          string
	busKey          string
	busLookback     time.Duration
	stateLookback   time.Duration
	busDedupe       optionalDuration
	busSec          busSecurityFlags
	adminAddr       string
	adminToken      string
	pluginDirs      *[]string
	eventsOut       string
	eda             edaRunFlags
}

func addRunFlags(fs *flag.FlagSet) *runFlags {
	f := &runFlags{vars: addVarsFlags(fs), sourceDirs: addSourceDirFlags(fs), controller: addControllerFlags(fs)}
	fs.StringVar(&f.dataDir, "data-dir", "./data", "`DIR` of the durable journal, action queue and audit trail")
	fs.StringVar(&f.logFormat, "log-format", "auto", "log format: json, console, or auto (console on a terminal)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.IntVar(&f.maxBacklog, "max-backlog", journal.DefaultMaxBacklog, "events accepted but not yet processed, plus action invocations not yet finished, before sources answer 503 with Retry-After (negative: no bound)")
	fs.Int64Var(&f.maxBacklogBytes, "max-backlog-bytes", journal.DefaultMaxBacklogMB<<20, "stored bytes of the events not yet processed plus the action invocations not yet finished before sources answer 503 with Retry-After (negative: no bound)")
	fs.DurationVar(&f.retryAfter, "retry-after", journal.DefaultRetryAfter, "Retry-After advice sent with a 503 when the backlog is full")
	fs.DurationVar(&f.dedupeWindow, "dedupe-window", journal.DefaultDedupeWindow, "how long delivery ids are remembered when a source does not say")
	fs.DurationVar(&f.retention, "retention", journal.DefaultRetention, "how long processed events are kept before compaction")
	fs.DurationVar(&f.auditRetention, "audit-retention", 30*24*time.Hour, "how long finished firings stay in the audit trail (0 keeps them)")
	fs.IntVar(&f.maxConcurrency, "max-concurrency", dispatch.DefaultMaxConcurrency, "actions running at once, in total")
	fs.Var(&f.actionLimits, "action-concurrency", "per action type limit `TYPE=N`, e.g. run_playbook=4 (repeatable)")
	fs.DurationVar(&f.defaultTimeout, "action-timeout", dispatch.DefaultTimeout, "time limit of an action attempt that sets no timeout")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGTERM/SIGINT, how long running actions may finish before they are cancelled (they resume on the next start)")
	fs.StringVar(&f.busURL, "bus", "", "run on Kafka instead of the embedded journal: `kafka://BROKER[,BROKER...]/TOPIC[?group=NAME]`; every process started with the same --bus shares the work")
	fs.StringVar(&f.busKey, "bus-key", DefaultBusKey, "with --bus: expression of an event's partition key; events with one key meet the same rule state")
	fs.DurationVar(&f.stateLookback, "state-lookback", 0, "without --bus (see --bus-lookback): history of the journal replayed on start to rebuild rule state (0: the longest throttle window or multi-event timeout of the rulebook; at most --retention); facts are stored apart and restored whatever their age")
	fs.DurationVar(&f.busLookback, "bus-lookback", 0, "with --bus: history replayed to rebuild rule state when a partition moves here (0: the longest throttle window or multi-event timeout of the rulebook)")
	fs.Var(&f.busDedupe, "bus-dedupe-lookback", "with --bus: `duration` of history read on takeover to recognise repeated deliveries (default: --dedupe-window; lower it to read less on big topics)")
	f.busSec.add(fs)
	fs.StringVar(&f.adminAddr, "admin", "", "serve the admin API, live stream, dashboard, /metrics, /healthz and /readyz on `ADDR` (e.g. 127.0.0.1:5080); off when empty")
	fs.StringVar(&f.adminToken, "admin-token", "", "bearer token the admin listener requires (also RULEBOOK_ADMIN_TOKEN; ${env:..}/${file:..} allowed); required unless --admin is a loopback address")
	fs.BoolVar(&f.watch, "watch", false, "reload the rulebook when its file changes (SIGHUP always reloads)")
	fs.StringVar(&f.eventsOut, "events-out", "-", "where the debug and print_event actions write: `FILE` (appended to) or - for stdout; logs always go to stderr")
	f.pluginDirs = addPluginFlags(fs)
	f.eda.add(fs)
	return f
}

// openEventsOut opens the destination of debug and print_event output
// named by --events-out: "-" (or empty) is stdout; a file is created or
// appended to, so a restart does not erase what an earlier run printed.
// The returned close function is a no-op for stdout.
func openEventsOut(name string, stdout io.Writer) (io.Writer, func() error, error) {
	if name == "" || name == "-" {
		return stdout, func() error { return nil }, nil
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("--events-out: %w", err)
	}
	return f, f.Close, nil
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
	files, err = rf.eda.rulebook(files)
	if err != nil {
		return err
	}
	if len(files) != 1 {
		fs.Usage()
		return errUsage
	}
	log, err := newLogger(stderr, rf.logFormat, rf.eda.level(rf.logLevel))
	if err != nil {
		return err
	}
	out, closeOut, err := openEventsOut(rf.eventsOut, stdout)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err = runRulebook(ctx, files[0], rf, out, log)
	if cerr := closeOut(); cerr != nil && err == nil {
		err = fmt.Errorf("--events-out: %w", cerr)
	}
	return err
}

// runRulebook runs one rulebook until its sources end, a shutdown action
// runs, or ctx ends (a signal).
func runRulebook(ctx context.Context, path string, rf *runFlags, stdout io.Writer, log zerolog.Logger) error {
	a, err := newApp(path, rf, stdout, log)
	if err != nil {
		return err
	}
	return a.run(ctx)
}

// app is one running rulebook: the wiring of `rulebook run`.
type app struct {
	path   string
	rf     *runFlags
	log    zerolog.Logger
	stdout io.Writer
	clock  engine.Clock
	extra  map[string]any

	hub      *httpingest.Hub
	wiring   *wiring
	store    *journal.Store
	gate     *gate
	actions  *actionSet
	disp     *dispatch.Dispatcher
	eng      *engine.Engine // embedded journal: the one engine
	parts    *partitions    // --bus: an engine per owned partition
	consumer *bus.Consumer  // --bus
	sources  *sourceSet
	metrics  *metrics.Metrics
	stream   *admin.Stream
	rbMu     sync.Mutex
	rulesets []*engine.Ruleset // the rulebook running now
	// modes are its rules' modes by ruleset and rule name (ruleMode):
	// asked once per firing, so a look-up, not a scan of every rule.
	modes map[ruleKey]ruleModeOf

	busSecurity kafkaconn.Security // --bus: what --bus-tls-* and --bus-sasl-* loaded

	reloadMu sync.Mutex
	draining atomic.Bool
	// adminURL is the admin listener's URL once it listens (approval links).
	adminURL atomic.Pointer[string]
	// adminReady is closed once startAdmin has run (adminURL is set when
	// the listener listens) or the run ends before it: approval
	// notifications wait for it, for the approve link.
	adminReady     chan struct{}
	adminReadyOnce sync.Once
	// stopped is closed when run returns: what still waits to send an
	// approval notification again gives up (the next start sends it).
	stopped  chan struct{}
	shutdown chan engine.ShutdownRequest
	// recorded is closed once the start has recorded the rulebook for
	// backtest (recordRulebook).
	recorded chan struct{}
}

func newApp(path string, rf *runFlags, stdout io.Writer, log zerolog.Logger) (*app, error) {
	extra, err := rf.vars.load()
	if err != nil {
		return nil, err
	}
	a := &app{path: path, rf: rf, log: log, stdout: stdout, clock: engine.SystemClock{}, extra: extra,
		shutdown: make(chan engine.ShutdownRequest, 1), adminReady: make(chan struct{}), stopped: make(chan struct{})}
	a.metrics = metrics.New()
	a.hub = httpingest.NewHub(httpingest.HubConfig{Log: log.With().Str("component", "http").Logger(),
		OnReject: func(src engine.SourceRef, reason string) {
			a.metrics.EventReceived(src.Ruleset+"/"+src.Name, reason)
		}})
	a.stream = admin.NewStream(admin.StreamConfig{})
	return a, nil
}

// load compiles the rulebook file with the app's registry; errors are
// logged one per line with their position.
func (a *app) load(file *rulebooks.File) (*rulebooks.Rulebook, error) {
	rb, err := file.Compile(rulebooks.Options{Registry: a.wiring.reg, Clock: a.clock, ExtraVars: a.extra, CheckSecrets: true})
	if err != nil {
		var list rulebooks.ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				a.log.Error().Str("file", e.File).Int("line", e.Line).Int("column", e.Column).Msg(e.Error())
			}
			return nil, fmt.Errorf("%s: %d problem(s); see `rulebook validate --strict %s`", a.path, len(list), a.path)
		}
		return nil, err
	}
	for _, w := range rb.Warnings {
		a.log.Warn().Str("file", w.File).Int("line", w.Line).Int("column", w.Column).Msg(w.Error())
	}
	return rb, nil
}

// recordRulebook keeps the text of the rulebook now running in the data
// dir, for `rulebook backtest` to compare a change against. Failing to is
// logged, not fatal: it only costs the backtest its default.
func (a *app) recordRulebook(text []byte) {
	if err := backtest.SaveLastRun(a.rf.dataDir, a.path, text, time.Now()); err != nil {
		a.log.Warn().Err(err).Msg("rulebook not recorded for backtest")
	}
}

// adminSettled closes adminReady, once.
func (a *app) adminSettled() { a.adminReadyOnce.Do(func() { close(a.adminReady) }) }

func (a *app) run(ctx context.Context) (result error) {
	defer close(a.stopped)
	defer a.adminSettled()
	rf, log := a.rf, a.log
	perAction, err := rf.perAction()
	if err != nil {
		return err
	}
	// Before anything opens: a bad --bus-tls-*/--bus-sasl-* flag, an
	// unreadable certificate or an unresolvable password stops here.
	a.busSecurity, err = rf.busSec.load(rf.busURL != "")
	if err != nil {
		return err
	}
	ctl, ctlErr := rf.controller.controller(os.Getenv)
	// Read and parsed once, for the plugins it declares and the compile,
	// with its memory bounded (loadmem.go).
	restoreMem := boundLoadMemory(a.path)
	defer restoreMem()
	file, err := rulebooks.ReadFile(a.path)
	if err != nil {
		return err
	}
	a.wiring, err = buildRegistry(registryOptions{rulebookPath: a.path, rulebook: file, pluginDirs: *rf.pluginDirs,
		pluginState: filepath.Join(rf.dataDir, "plugins"), hub: a.hub, log: log, // the plugin hosts name their components
		sourceDirs: *rf.sourceDirs, controller: ctl, controllerErr: ctlErr,
		inventory: rf.eda.inventory})
	if err != nil {
		return err
	}
	if a.wiring.host != nil {
		defer a.wiring.host.Close()
	}
	rb, err := a.load(file)
	if err != nil {
		return err
	}

	a.store, err = journal.Open(journal.Options{
		Dir: rf.dataDir, MaxBacklog: rf.maxBacklog, MaxBacklogBytes: rf.maxBacklogBytes, RetryAfter: rf.retryAfter, DedupeWindow: rf.dedupeWindow,
		Retention: rf.retention, AuditRetention: rf.auditRetention, Clock: a.clock, Log: log,
		OnCommit: a.metrics.ObserveCommit,
		// On the bus, records are marked done by Kafka offset commits, which
		// do not follow this store's WAL.
		SyncAllFirings: rf.busURL != "",
	})
	if err != nil {
		return fmt.Errorf("open data dir %s: %w", rf.dataDir, err)
	}
	defer a.store.Close()
	if err := a.store.Start(ctx); err != nil {
		return err
	}
	a.gate = &gate{inner: a.store, log: log, onEmit: func(src engine.SourceRef, outcomes []engine.Outcome, err error) {
		name := src.Ruleset + "/" + src.Name
		if err != nil {
			if _, full := engine.IsBacklog(err); full {
				a.metrics.EventReceived(name, metrics.ReasonBacklog)
			} else {
				a.metrics.EventReceived(name, metrics.ReasonError)
			}
			return
		}
		for _, o := range outcomes {
			a.metrics.EventReceived(name, outcomeReason(o))
		}
	}}
	a.setRulesets(rb.Rulesets)
	// Recorded while the engine starts: encoding a big rulebook's text
	// takes milliseconds (10 for 1 MB). Done before the run says it is
	// running (or returns early), and before a reload records its own.
	a.recorded = make(chan struct{})
	go func(text []byte) {
		defer close(a.recorded)
		a.recordRulebook(text)
	}(file.Data)
	defer func() { <-a.recorded }()

	a.actions = newActionSet(a.wiring.reg, rf.dataDir, log)
	if err := a.actions.ensure(rb); err != nil {
		return err
	}
	a.disp, err = dispatch.New(dispatch.Config{
		Store: a.store.Actions(), Actions: a.actions.get,
		MaxConcurrency: rf.maxConcurrency, PerAction: perAction, DefaultTimeout: rf.defaultTimeout,
		Feedback: func(inv *engine.Invocation, facts, events []map[string]any) {
			a.feedback(inv, facts, events)
		},
		ActionTypes: a.actions.types,
		OnResult: func(st *engine.InvocationState) {
			a.metrics.ActionResult(st)
			a.stream.PublishResult(st)
		},
		Mode:                a.ruleMode,
		OnApprovalRequested: a.notifyApproval,
		Log:                 log, // the dispatcher names its component
	})
	if err != nil {
		return err
	}
	var producer *bus.Producer
	var consumer *bus.Consumer
	if rf.busURL != "" {
		producer, consumer, err = a.openBus(rb)
		a.consumer = consumer
		if err != nil {
			return err
		}
		defer producer.Close()
		a.gate.inner = producer
		a.parts = newPartitions(a, consumer.Topic(), rb.Rulesets)
	} else {
		a.eng = engine.New(rb.Rulesets, a.engineOptions(log.With().Str("component", "engine").Logger()))
	}
	restoreMem() // loaded and built
	if err := a.disp.Start(ctx); err != nil {
		return err
	}
	// A signal that reached the actions' processes too (systemd's
	// KillMode=control-group, a group kill) must not make dead letters of
	// them: the dispatcher learns of the shutdown at once, not only at
	// Stop, after the journal drained.
	go func() {
		<-ctx.Done()
		a.disp.BeginShutdown()
	}()

	a.sources = newSourceSet(a.wiring.reg, a.gate, a.clock, log)
	if err := a.sources.startMissing(desiredSources(rb.Rulesets)); err != nil {
		a.sources.stopAll()
		a.disp.Stop(context.Background())
		return err
	}

	runCtx, stopRunner := context.WithCancel(context.Background())
	defer stopRunner()
	runErr := make(chan error, 1)
	sourcesEnded := a.sources.ended
	if consumer != nil {
		go func() { runErr <- consumer.Run(runCtx, a.parts.open) }()
		// On the bus other processes may still send; finite sources ending
		// here do not end the run.
		sourcesEnded = nil
	} else {
		// OnRecord sees live records only: those replayed to rebuild rule
		// state are history, not events to publish or count.
		runner := &engine.Runner{Engine: a.eng, Journal: a.store, OnRecord: a.observeRecord, Log: log,
			Clock: a.clock, Lookback: a.replayWindow(rb.Rulesets)}
		go func() { runErr <- runner.Run(runCtx) }()
	}

	a.wireMetrics()
	adminSrv, err := a.startAdmin(ctx)
	if err != nil {
		a.sources.stopAll()
		stopRunner()
		a.disp.Stop(context.Background())
		return err
	}
	reloads := a.reloadTriggers(ctx)
	<-a.recorded
	log.Info().Str("rulebook", a.path).Int("rulesets", len(rb.Rulesets)).Int("sources", a.sources.count()).Str("data_dir", rf.dataDir).Msg("running")

	drainActions := true
wait:
	for {
		select {
		case <-ctx.Done():
			log.Info().Msg("signal received; shutting down")
			break wait
		case why := <-reloads:
			err := a.reload(why)
			a.stream.PublishReload(err)
			if err != nil {
				log.Error().Err(err).Str("trigger", why).Msg("reload rejected; the running rulebook is unchanged")
			}
		case r := <-a.shutdown:
			drainActions = a.awaitShutdown(ctx, r)
			break wait
		case err := <-a.sources.errs:
			log.Error().Err(err).Msg("source failed; shutting down")
			result = err
			break wait
		case err := <-runErr:
			if err != nil {
				log.Error().Err(err).Msg("engine stopped")
				result = err
			}
			runErr <- nil
			break wait
		case <-sourcesEnded:
			log.Info().Msg("all sources ended; finishing what they sent")
			// Everything the sources sent gets processed, and every action
			// it caused finishes (or a signal cuts it short).
			waitIdle(ctx, a.store, 50*time.Millisecond)
			waitActions(ctx, a.store.Actions(), 100*time.Millisecond)
			// Open not_all and once_after windows still fire (lifetime.go).
			if r, ok := a.awaitTimers(ctx); ok {
				drainActions = a.awaitShutdown(ctx, r)
			}
			break wait
		}
	}

	// Intake stops first: from here HTTP sources answer 503 with
	// Retry-After. What was accepted is processed now or on the next start.
	a.draining.Store(true)
	if adminSrv != nil {
		adminSrv.SetDraining(true)
	}
	a.gate.close()
	drainCtx, cancelDrain := context.WithTimeout(context.Background(), rf.shutdownTimeout)
	defer cancelDrain()
	waitIdle(drainCtx, a.store, 20*time.Millisecond)
	a.sources.stopAll()
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
	if err := a.disp.Stop(stopCtx); err != nil {
		log.Warn().Err(err).Msg("running actions were cancelled; they resume on the next start")
	}
	if err := a.hub.Stop(context.Background()); err != nil && !errors.Is(err, httpingest.ErrHubStopped) {
		log.Warn().Err(err).Msg("http listeners")
	}
	a.actions.close()
	if err := a.store.Close(); err != nil && result == nil {
		result = err
	}
	if adminSrv != nil {
		adminSrv.Stop(context.Background())
	}
	log.Info().Msg("stopped")
	return result
}

// openBus builds the producer the sources emit to and the consumer that
// feeds the partition engines.
func (a *app) openBus(rb *rulebooks.Rulebook) (*bus.Producer, *bus.Consumer, error) {
	cfg, err := bus.ParseURL(a.rf.busURL)
	if err != nil {
		return nil, nil, fmt.Errorf("--bus: %w", err)
	}
	cfg.Security = a.busSecurity
	key, err := busKeyFunc(a.rf.busKey)
	if err != nil {
		return nil, nil, err
	}
	pctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	n, err := bus.Partitions(pctx, cfg)
	cancel()
	if err != nil {
		return nil, nil, fmt.Errorf("--bus: %w%s", err, a.rf.busSec.hint(err))
	}
	producer, err := bus.NewProducer(cfg, key, a.log)
	if err != nil {
		return nil, nil, fmt.Errorf("--bus: %w", err)
	}
	lookback := a.rf.busLookback
	if lookback == 0 {
		lookback = engine.StateWindow(rb.Rulesets)
		if lookback == 0 {
			lookback = -1 // nothing in the rulebook keeps state over time
		}
	}
	dedupeLookback := a.rf.busDedupe.or(a.rf.dedupeWindow)
	consumer, err := bus.NewConsumer(bus.ConsumerConfig{Config: cfg, Lookback: lookback, DedupeWindow: a.rf.dedupeWindow,
		DedupeLookback: dedupeLookback, Log: a.log})
	if err != nil {
		producer.Close()
		return nil, nil, fmt.Errorf("--bus: %w", err)
	}
	a.rf.busSec.warn(a.log)
	a.log.Info().Strs("brokers", cfg.Brokers).Str("topic", cfg.Topic).Str("group", cfg.Group).Int("partitions", n).
		Dur("lookback", lookback).Dur("dedupe_lookback", dedupeLookback).
		Bool("tls", cfg.Security.TLS != nil).Str("sasl_mechanism", a.rf.busSec.mechanism()).Msg("running on the bus")
	return producer, consumer, nil
}

// replayWindow is how much of the journal a start replays to rebuild rule
// state: --state-lookback, or else the rulebook's longest state window, but
// no more than the journal keeps (--retention).
func (a *app) replayWindow(rulesets []*engine.Ruleset) time.Duration {
	w := a.rf.stateLookback
	if w <= 0 {
		w = engine.StateWindow(rulesets)
	}
	retention := a.rf.retention
	if retention <= 0 {
		retention = journal.DefaultRetention
	}
	if w > retention {
		a.log.Warn().Dur("window", w).Dur("retention", retention).
			Msg("a rule keeps state longer than --retention keeps events; after a restart its state is rebuilt from the retained events only")
		w = retention
	}
	return w
}

// observeRecord feeds the live stream and the metrics with every event
// the engine is about to process. A journaled action feedback record is
// not one: its facts and events showed as an "event" of source "feedback"
// and counted as one processed event otherwise (feedback applied on the
// bus, by Inject, shows in neither).
func (a *app) observeRecord(rec engine.Record) {
	if rec.Source.Type == engine.FeedbackSourceType {
		return
	}
	a.stream.PublishEvent(rec)
	a.metrics.Processed(rec.Source.Ruleset)
	if a.rf.eda.printEvents {
		a.printEvent(rec)
	}
}

// awaitShutdown honours a shutdown action's delay (a signal cuts it short)
// and says whether the actions still queued are to run before the exit.
func (a *app) awaitShutdown(ctx context.Context, r engine.ShutdownRequest) (drainActions bool) {
	if r.Delay > 0 {
		a.log.Info().Dur("delay", r.Delay).Msg("shutting down after delay")
		select {
		case <-time.After(r.Delay):
		case <-ctx.Done():
		}
	}
	return !r.Now
}

// ruleKey names a rule in a rulebook.
type ruleKey struct{ ruleset, rule string }

// ruleModeOf is a rule's mode and approval policy.
type ruleModeOf struct {
	mode     string
	approval *engine.ApprovalPolicy
}

func (a *app) setRulesets(rs []*engine.Ruleset) {
	n := 0
	for _, set := range rs {
		n += len(set.Rules)
	}
	modes := make(map[ruleKey]ruleModeOf, n)
	for _, set := range rs {
		for _, r := range set.Rules {
			k := ruleKey{set.Name, r.Name}
			if _, seen := modes[k]; !seen { // the first of a name, as a scan finds it
				modes[k] = ruleModeOf{r.Mode, r.Approval}
			}
		}
	}
	a.rbMu.Lock()
	a.rulesets, a.modes = rs, modes
	a.rbMu.Unlock()
}

// ruleMode is the dispatcher's Config.Mode: a rule's mode and approval
// policy in the rulebook running now (auto for a rule it no longer has).
func (a *app) ruleMode(ruleset, rule string) (string, *engine.ApprovalPolicy) {
	a.rbMu.Lock()
	m, ok := a.modes[ruleKey{ruleset, rule}]
	a.rbMu.Unlock()
	if !ok {
		return engine.ModeAuto, nil
	}
	return m.mode, m.approval
}

// currentRulesets returns the rulebook running now.
func (a *app) currentRulesets() []*engine.Ruleset {
	a.rbMu.Lock()
	defer a.rbMu.Unlock()
	return a.rulesets
}

// engineOptions are the options of every engine of this process.
func (a *app) engineOptions(log zerolog.Logger) engine.Options {
	return engine.Options{
		Clock: a.clock, Dispatcher: a.disp, Stdout: a.stdout, Log: log,
		OnFiring: func(f *engine.Firing, acts []engine.RenderedAction) {
			a.metrics.ObserveFiring(f, acts)
			a.stream.PublishFiring(f, acts)
		},
		OnShutdown: func(r engine.ShutdownRequest) {
			select {
			case a.shutdown <- r:
			default:
			}
		},
	}
}

// feedbackTimeout bounds how long an action's feedback waits for room in a
// full journal.
const feedbackTimeout = time.Minute

// feedback applies an action's facts and events to the engine that fired
// it. With the embedded journal they are journaled (engine.FeedbackEntry)
// and reach the engine in order with events, survive a crash, and are
// replayed when rule state is rebuilt after a restart. On the bus they go
// to the engine of the invocation's partition directly; a partition that
// moved to another process since takes its state from history there, and
// the feedback is dropped here, with a warning.
func (a *app) feedback(inv *engine.Invocation, facts, events []map[string]any) {
	log := a.log.With().Str("ruleset", inv.Ruleset).Str("invocation_id", inv.ID).Logger()
	if a.parts == nil {
		ctx, cancel := context.WithTimeout(context.Background(), feedbackTimeout)
		defer cancel()
		entry := engine.FeedbackEntry(inv, facts, events, a.clock.Now())
		if _, err := engine.EmitWait(ctx, a.clock, a.store, engine.FeedbackSource(inv.Ruleset), []engine.Entry{entry}); err != nil {
			log.Error().Err(err).Int("facts", len(facts)).Int("events", len(events)).Msg("action feedback not journaled; it is lost")
		}
		return
	}
	eng := a.parts.engine(inv.Stream)
	if eng == nil {
		log.Warn().Str("stream", inv.Stream).Int("facts", len(facts)).Int("events", len(events)).
			Msg("action feedback dropped: its partition is no longer owned by this process")
		return
	}
	if err := eng.Inject(context.Background(), inv.Ruleset, facts, events); err != nil {
		log.Error().Err(err).Msg("action feedback not applied")
	}
}

// engines returns the engines running now: one, or one per partition.
func (a *app) engines() []*engine.Engine {
	if a.parts != nil {
		return a.parts.engines()
	}
	if a.eng != nil {
		return []*engine.Engine{a.eng}
	}
	return nil
}

// reload validates the rulebook again and, when it is valid, swaps it in:
// changed and removed sources stop, the engine swaps its rulesets (keeping
// the state of unchanged rules), new sources start. An invalid rulebook
// changes nothing. Its caller publishes the outcome on the live stream
// (the admin listener does for the reloads it asks for).
func (a *app) reload(trigger string) error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	if a.draining.Load() {
		return errors.New("shutting down")
	}
	file, err := rulebooks.ReadFile(a.path)
	if err != nil {
		return err
	}
	rb, err := a.load(file)
	if err != nil {
		return err
	}
	if err := a.actions.ensure(rb); err != nil {
		return err
	}
	want := desiredSources(rb.Rulesets)
	a.sources.stopStale(want)
	var sum engine.ReloadSummary
	if a.parts != nil {
		sum = a.parts.replace(rb.Rulesets)
	} else {
		sum = a.eng.Replace(rb.Rulesets)
	}
	a.setRulesets(rb.Rulesets)
	if a.recorded != nil {
		<-a.recorded // the start's record is not to land after this one
	}
	a.recordRulebook(file.Data)
	// Pending approvals of rules switched to auto run, to shadow are
	// cancelled.
	a.disp.ModesChanged()
	if err := a.sources.startMissing(want); err != nil {
		return fmt.Errorf("rulesets reloaded, but a source did not start: %w", err)
	}
	a.log.Info().Str("trigger", trigger).Int("rulesets", sum.Rulesets).Int("rules", sum.Rules).
		Int("kept_rules", sum.KeptRules).Int("reset_rules", sum.ResetRules).Int("sources", a.sources.count()).Msg("rulebook reloaded")
	return nil
}

// reloadTriggers delivers a reason on every SIGHUP and, with --watch, on
// every change of the rulebook file (debounced).
func (a *app) reloadTriggers(ctx context.Context) <-chan string {
	out := make(chan string, 1)
	send := func(why string) {
		select {
		case out <- why:
		default:
		}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				send("SIGHUP")
			}
		}
	}()
	if a.rf.watch {
		if err := watchFile(ctx, a.path, func() { send("file changed") }, a.log); err != nil {
			a.log.Error().Err(err).Msg("--watch: cannot watch the rulebook")
		}
	}
	return out
}

// actionSet holds the built actions; reloads add the types they need.
type actionSet struct {
	reg     *engine.Registry
	dataDir string
	log     zerolog.Logger
	mu      sync.RWMutex
	built   map[string]engine.Action
}

func newActionSet(reg *engine.Registry, dataDir string, log zerolog.Logger) *actionSet {
	return &actionSet{reg: reg, dataDir: dataDir, log: log, built: map[string]engine.Action{}}
}

func (s *actionSet) get(typ string) (engine.Action, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, ok := s.built[typ]
	return a, ok
}

// types lists the action types built.
func (s *actionSet) types() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Collect(maps.Keys(s.built))
}

// ensure builds each action type the rulebook uses that is not built yet.
func (s *actionSet) ensure(rb *rulebooks.Rulebook) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rs := range rb.Rulesets {
		for _, r := range rs.Rules {
			defs := r.Actions
			if r.Approval != nil && r.Approval.Notify != nil {
				defs = append(append([]*engine.ActionDef(nil), defs...), r.Approval.Notify)
			}
			for _, a := range defs {
				if engine.IsBuiltinAction(a.Type) || s.built[a.Type] != nil {
					continue
				}
				spec, ok := s.reg.Action(a.Type)
				if !ok {
					return fmt.Errorf("%s: unknown action %q", a.Pos, a.Type)
				}
				act, err := spec.New(engine.ActionEnv{DataDir: s.dataDir, Log: s.log.With().Str("action", a.Type).Logger()})
				if err != nil {
					return fmt.Errorf("%s: action %q: %w", a.Pos, a.Type, err)
				}
				s.built[a.Type] = act
			}
		}
	}
	return nil
}

// close releases actions that hold resources (HTTP clients, Kafka writers).
func (s *actionSet) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for typ, a := range s.built {
		if c, ok := a.(interface{ Close() error }); ok {
			if err := c.Close(); err != nil {
				s.log.Warn().Err(err).Str("action", typ).Msg("close")
			}
		} else if c, ok := a.(interface{ Close() }); ok {
			c.Close()
		}
	}
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
