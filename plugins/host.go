// Package plugins is the engine's side of action plugins: separate
// executables that provide actions over gRPC (github.com/hashicorp/go-plugin).
//
// The CLI builds a Host with the directories to search (--plugins-dir, or
// DefaultDirs) and the plugins a rulebook declares, starts it, and registers
// the actions the plugins describe:
//
//	h, err := plugins.NewHost(plugins.Options{Dirs: dirs, Declared: decl, StateDir: dataDir, Log: log})
//	infos, err := h.Start(ctx) // err lists the plugins that could not start
//	err = h.Register(registry) // one engine.ActionSpec per plugin action
//	defer h.Close()
//
// A plugin that crashes or stops answering fails the running invocation as
// Retryable and is restarted with backoff on its next use; the dispatcher's
// retry policy does the rest. Close stops every plugin process.
package plugins

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
)

// Options configure a Host.
type Options struct {
	// Dirs are searched for executables named rulebook-plugin-NAME. A
	// directory that does not exist is skipped.
	Dirs []string
	// Declared plugins are started too; with a checksum, only if the file
	// matches it.
	Declared []Declared
	// StateDir, when set, holds one private directory per plugin
	// (StateDir/NAME), passed to the plugin in RULEBOOK_PLUGIN_STATE_DIR.
	StateDir string
	Log      zerolog.Logger
	// Clock times restarts (default engine.SystemClock).
	Clock engine.Clock
	// Backoff is how long to wait before starting a plugin again after its
	// n-th consecutive failure (n >= 1). Default: 500ms doubling up to 30s.
	Backoff func(n int) time.Duration
	// StartTimeout bounds starting a plugin and its Describe call (default
	// 10s).
	StartTimeout time.Duration
	// CancelGrace is how long a plugin may keep running a call whose
	// context ended before it is considered hung and restarted (default
	// 5s).
	CancelGrace time.Duration
	// HealthTimeout bounds the health check made after CancelGrace (default
	// 2s).
	HealthTimeout time.Duration
}

// DefaultBackoff waits 500ms after the first failure, doubling up to 30s.
func DefaultBackoff(n int) time.Duration {
	d := 500 * time.Millisecond
	for i := 1; i < n && d < 30*time.Second; i++ {
		d *= 2
	}
	return min(d, 30*time.Second)
}

// Info describes one plugin the host found.
type Info struct {
	Name string
	// Path is the executable; SHA256 its checksum when it was started.
	Path   string
	SHA256 string
	// Declared is true for a plugin declared with a path rather than found
	// in a directory.
	Declared        bool
	Version         string
	Description     string
	ProtocolVersion int
	Actions         []ActionInfo
	// Err says why the plugin could not be started or described; its
	// actions are not registered then.
	Err error
}

// ActionInfo describes one action of a plugin.
type ActionInfo struct {
	Name        string
	Description string
	// Schema is the JSON Schema of the arguments as the plugin sent it.
	Schema string
}

// Host starts, supervises and stops plugin processes.
type Host struct {
	opts Options
	log  zerolog.Logger

	callID atomic.Uint64
	wg     sync.WaitGroup
	done   chan struct{} // closed by Close, under mu

	mu      sync.Mutex
	started bool
	procs   []*proc
	infos   []Info
	specs   []engine.ActionSpec
}

// NewHost returns a Host; nothing starts until Start.
func NewHost(opts Options) (*Host, error) {
	if opts.Clock == nil {
		opts.Clock = engine.SystemClock{}
	}
	if opts.Backoff == nil {
		opts.Backoff = DefaultBackoff
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 10 * time.Second
	}
	if opts.CancelGrace <= 0 {
		opts.CancelGrace = 5 * time.Second
	}
	if opts.HealthTimeout <= 0 {
		opts.HealthTimeout = 2 * time.Second
	}
	for i, d := range opts.Dirs {
		if d == "" {
			return nil, fmt.Errorf("plugins dir %d is empty", i+1)
		}
	}
	return &Host{
		opts: opts,
		log:  opts.Log.With().Str("component", "plugins").Logger(),
		done: make(chan struct{}),
	}, nil
}

// Start discovers the plugins, starts each one and asks it to describe
// itself. A plugin that cannot be started (bad checksum, another protocol
// version, not a plugin, a crash, an invalid schema) does not stop the
// others: its Info carries the error, and the returned error joins all such
// errors. Start may be called once.
func (h *Host) Start(ctx context.Context) ([]Info, error) {
	h.mu.Lock()
	if h.started || h.isClosed() {
		h.mu.Unlock()
		return nil, errors.New("plugin host already started or closed")
	}
	h.started = true
	h.mu.Unlock()

	cands, warnings, discErr := discover(h.opts.Dirs, h.opts.Declared)
	for _, w := range warnings {
		h.log.Warn().Msg(w)
	}
	errs := []error{discErr}

	var infos []Info
	var procs []*proc
	var specs []engine.ActionSpec
	owner := map[string]string{} // action -> plugin
	for _, c := range cands {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		p := newProc(h, c)
		procs = append(procs, p)
		info, err := p.load()
		if err != nil {
			info.Err = err
			errs = append(errs, err)
			infos = append(infos, info)
			continue
		}
		var dupErrs []error
		for _, a := range info.Actions {
			if other, dup := owner[a.Name]; dup {
				dupErrs = append(dupErrs, fmt.Errorf("plugin %q: action %q is already provided by plugin %q", c.name, a.Name, other))
			}
		}
		if len(dupErrs) > 0 {
			info.Err = errors.Join(dupErrs...)
			errs = append(errs, info.Err)
			p.stop()
			infos = append(infos, info)
			continue
		}
		for _, a := range info.Actions {
			owner[a.Name] = c.name
			specs = append(specs, p.spec(a))
		}
		infos = append(infos, info)
		h.log.Info().Str("plugin", c.name).Str("path", c.path).Str("version", info.Version).
			Int("actions", len(info.Actions)).Msg("plugin started")
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	sort.Slice(specs, func(i, j int) bool { return specs[i].Type < specs[j].Type })

	h.mu.Lock()
	h.procs, h.infos, h.specs = procs, infos, specs
	closed := h.isClosed()
	h.mu.Unlock()
	if closed { // Close raced with Start: stop what Start started.
		for _, p := range procs {
			p.stop()
		}
	}
	return cloneInfos(infos), errors.Join(errs...)
}

// Infos returns what Start found, sorted by name.
func (h *Host) Infos() []Info {
	h.mu.Lock()
	defer h.mu.Unlock()
	return cloneInfos(h.infos)
}

// Info returns the plugin called name.
func (h *Host) Info(name string) (Info, bool) {
	for _, in := range h.Infos() {
		if in.Name == name {
			return in, true
		}
	}
	return Info{}, false
}

// Specs returns one engine.ActionSpec per action of every plugin that
// started, sorted by type.
func (h *Host) Specs() []engine.ActionSpec {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]engine.ActionSpec(nil), h.specs...)
}

// Register adds Specs to reg. An action type that reg already has (a
// built-in of the same name) is not registered and is reported; the others
// are.
func (h *Host) Register(reg *engine.Registry) error {
	var errs []error
	for _, s := range h.Specs() {
		if _, dup := reg.Action(s.Type); dup {
			errs = append(errs, fmt.Errorf("plugin action %q: an action of that type is already registered", s.Type))
			continue
		}
		reg.RegisterAction(s)
	}
	return errors.Join(errs...)
}

// Restarts returns how many times the plugin called name was started again
// after a crash or hang (0 when unknown).
func (h *Host) Restarts(name string) int {
	h.mu.Lock()
	procs := h.procs
	h.mu.Unlock()
	for _, p := range procs {
		if p.name == name {
			return p.restartCount()
		}
	}
	return 0
}

// Close stops every plugin process and waits for the host's goroutines. It
// is safe to call more than once; invocations after it fail as Retryable.
func (h *Host) Close() error {
	h.mu.Lock()
	if h.isClosed() {
		h.mu.Unlock()
		return nil
	}
	close(h.done)
	procs := h.procs
	h.mu.Unlock()

	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stop()
		}()
	}
	wg.Wait()
	h.wg.Wait()
	return nil
}

func (h *Host) isClosed() bool {
	select {
	case <-h.done:
		return true
	default:
		return false
	}
}

func cloneInfos(in []Info) []Info {
	out := make([]Info, len(in))
	for i, x := range in {
		x.Actions = append([]ActionInfo(nil), x.Actions...)
		out[i] = x
	}
	return out
}
