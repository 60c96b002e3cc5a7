package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/plugins/proto"
)

// SourceFilePrefix starts the file name of every discoverable source
// plugin: rulebook-source-NAME.
const SourceFilePrefix = "rulebook-source-"

// IsSourcePath reports whether path names a source plugin binary.
func IsSourcePath(path string) bool {
	return strings.HasPrefix(filepath.Base(path), SourceFilePrefix)
}

// SourceOptions configure a SourceHost.
type SourceOptions struct {
	// Dirs are searched for executables named rulebook-source-NAME.
	Dirs []string
	// Declared source plugins (a rulebook's `plugins:` entries whose file
	// is named rulebook-source-NAME); with a checksum, only if the file
	// matches it.
	Declared []Declared
	// StateDir, when set, holds one private directory per plugin.
	StateDir string
	Log      zerolog.Logger
	// Clock times restarts and hang detection (default engine.SystemClock).
	Clock engine.Clock
	// Backoff is the wait before starting a plugin again after its n-th
	// consecutive failure. Default: DefaultBackoff.
	Backoff func(n int) time.Duration
	// StartTimeout bounds starting a plugin and its Describe call
	// (default 10s).
	StartTimeout time.Duration
	// Heartbeat is how often a running plugin says it is alive while idle
	// (default 5s); one silent for HangAfter (default 4 heartbeats) is
	// considered hung, killed and restarted.
	Heartbeat time.Duration
	HangAfter time.Duration
}

// SourceInfo describes one source plugin the host found.
type SourceInfo struct {
	Name            string
	Path            string
	SHA256          string
	Declared        bool
	Version         string
	Description     string
	ProtocolVersion int
	// Schema is the JSON Schema of the arguments as the plugin sent it.
	Schema string
	// Err says why the plugin could not be started or described.
	Err error
}

// SourceHost describes source plugins at start, registers one source type
// per plugin, and runs and supervises a plugin process per source that
// uses it.
type SourceHost struct {
	opts SourceOptions
	log  zerolog.Logger

	mu       sync.Mutex
	infos    []SourceInfo
	cands    map[string]candidate
	restarts map[string]int
}

// NewSourceHost returns a SourceHost; nothing starts until Start.
func NewSourceHost(opts SourceOptions) *SourceHost {
	if opts.Clock == nil {
		opts.Clock = engine.SystemClock{}
	}
	if opts.Backoff == nil {
		opts.Backoff = DefaultBackoff
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 10 * time.Second
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 5 * time.Second
	}
	if opts.HangAfter <= 0 {
		opts.HangAfter = 4 * opts.Heartbeat
	}
	return &SourceHost{opts: opts, log: opts.Log.With().Str("component", "source-plugins").Logger(),
		cands: map[string]candidate{}, restarts: map[string]int{}}
}

// AnySourcePlugins reports whether a directory holds a source plugin.
func AnySourcePlugins(dirs []string) bool {
	for _, d := range dirs {
		m, _ := filepath.Glob(filepath.Join(d, SourceFilePrefix+"*"))
		if len(m) > 0 {
			return true
		}
	}
	return false
}

// Start discovers the source plugins and asks each to describe itself (the
// process is stopped again: a plugin runs only while a source uses it). A
// plugin that cannot be described does not stop the others: its Info
// carries the error, and the returned error joins all of them.
func (h *SourceHost) Start(ctx context.Context) ([]SourceInfo, error) {
	cands, warnings, err := discoverSources(h.opts.Dirs, h.opts.Declared)
	for _, w := range warnings {
		h.log.Warn().Msg(w)
	}
	errs := []error{err}
	var infos []SourceInfo
	for _, c := range cands {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		info := SourceInfo{Name: c.name, Path: c.path, Declared: c.declared}
		l, err := h.launch(c)
		if err == nil {
			desc := l.desc
			info.Version, info.Description, info.Schema = desc.GetVersion(), desc.GetDescription(), desc.GetArgsSchema()
			info.ProtocolVersion = int(desc.GetProtocolVersion())
			_, err = compileSourceSchema(c.name, info.Schema)
		}
		if l != nil {
			info.SHA256 = l.sum
			l.client.Kill()
		}
		if err != nil {
			info.Err = err
			errs = append(errs, err)
		} else {
			h.mu.Lock()
			h.cands[c.name] = c
			h.mu.Unlock()
			h.log.Info().Str("plugin", c.name).Str("path", c.path).Str("version", info.Version).Msg("source plugin found")
		}
		infos = append(infos, info)
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	h.mu.Lock()
	h.infos = infos
	h.mu.Unlock()
	return cloneSourceInfos(infos), errors.Join(errs...)
}

// Infos returns what Start found, sorted by name.
func (h *SourceHost) Infos() []SourceInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	return cloneSourceInfos(h.infos)
}

// Info returns the source plugin called name.
func (h *SourceHost) Info(name string) (SourceInfo, bool) {
	for _, in := range h.Infos() {
		if in.Name == name {
			return in, true
		}
	}
	return SourceInfo{}, false
}

// Restarts returns how often the plugin called name was started again
// after a crash, a hang or an error.
func (h *SourceHost) Restarts(name string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.restarts[name]
}

// Register adds one source type per described plugin to reg. A type reg
// already has (a built-in source of the same name) is reported and not
// registered.
func (h *SourceHost) Register(reg *engine.Registry) error {
	var errs []error
	for _, in := range h.Infos() {
		if in.Err != nil {
			continue
		}
		if _, dup := reg.Source(in.Name); dup {
			errs = append(errs, fmt.Errorf("source plugin %q: a source of that type is already registered", in.Name))
			continue
		}
		reg.RegisterSource(h.spec(in))
	}
	return errors.Join(errs...)
}

func (h *SourceHost) spec(in SourceInfo) engine.SourceSpec {
	schema, _ := compileSourceSchema(in.Name, in.Schema) // compiled at Start
	var published map[string]any
	if strings.TrimSpace(in.Schema) != "" {
		_ = json.Unmarshal([]byte(in.Schema), &published)
	}
	name := in.Name
	desc := in.Description
	if desc == "" {
		desc = "source plugin " + name
	}
	return engine.SourceSpec{
		Type:        name,
		Description: desc,
		Schema:      published,
		Check:       schema.check,
		New: func(cfg engine.SourceConfig) (engine.Source, error) {
			h.mu.Lock()
			c, ok := h.cands[name]
			h.mu.Unlock()
			if !ok {
				return nil, fmt.Errorf("source plugin %q is not available", name)
			}
			clock := cfg.Clock
			if clock == nil {
				clock = h.opts.Clock
			}
			return &PluginSource{h: h, c: c, cfg: cfg, clock: clock,
				log: cfg.Log.With().Str("plugin", name).Logger()}, nil
		},
	}
}

func compileSourceSchema(name, text string) (*argsSchema, error) {
	return compileArgsSchema(fmt.Sprintf("source plugin %q", name), "rulebook-source:///"+name+".json", text)
}

// launched is a started source plugin process.
type launched struct {
	client *goplugin.Client
	rpc    proto.SourcePluginClient
	desc   *proto.DescribeSourceResponse
	sum    string
}

// launch starts c with the action plugins' handshake, protocol version and
// mutual TLS, and asks it to describe itself. On error the returned
// launched (when not nil) still holds the process to kill.
func (h *SourceHost) launch(c candidate) (*launched, error) {
	sum, err := FileSHA256(c.path)
	if err != nil {
		return nil, fmt.Errorf("source plugin %q: %w", c.name, err)
	}
	set := goplugin.PluginSet{proto.SourcePluginKey: &grpcPlugin{client: func(c *grpc.ClientConn) any { return proto.NewSourcePluginClient(c) }}}
	cfg, err := clientConfig(fmt.Sprintf("source plugin %q", c.name), c, sum, set, h.opts.StartTimeout, newHCLogger(h.log.With().Str("plugin", c.name).Logger()), h.opts.StateDir)
	if err != nil {
		return nil, err
	}
	l := &launched{client: goplugin.NewClient(cfg), sum: sum}
	cp, err := l.client.Client()
	if err != nil {
		return l, fmt.Errorf("source plugin %q (%q): start: %w", c.name, c.path, err)
	}
	raw, err := cp.Dispense(proto.SourcePluginKey)
	if err != nil {
		return l, fmt.Errorf("source plugin %q (%q): %w", c.name, c.path, err)
	}
	rpc, ok := raw.(proto.SourcePluginClient)
	if !ok {
		return l, fmt.Errorf("source plugin %q (%q): dispensed %T, not a source plugin client", c.name, c.path, raw)
	}
	l.rpc = rpc
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.StartTimeout)
	defer cancel()
	desc, err := rpc.DescribeSource(ctx, &proto.DescribeSourceRequest{})
	if err != nil {
		return l, fmt.Errorf("source plugin %q (%q): describe: %w", c.name, c.path, err)
	}
	if v := desc.GetProtocolVersion(); v != 0 && v != proto.ProtocolVersion {
		return l, fmt.Errorf("source plugin %q (%q): %w: the plugin speaks plugin protocol version %d, this engine speaks version %d",
			c.name, c.path, ErrProtocolVersion, v, proto.ProtocolVersion)
	}
	l.desc = desc
	return l, nil
}

func (h *SourceHost) countRestart(name string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.restarts[name]++
	return h.restarts[name]
}

// PluginSource is a source served by a plugin process. It implements
// engine.Source.
type PluginSource struct {
	h     *SourceHost
	c     candidate
	cfg   engine.SourceConfig
	clock engine.Clock
	log   zerolog.Logger
}

var _ engine.Source = (*PluginSource)(nil)

// errFinished: the plugin's run returned nil; the source is exhausted.
var errFinished = errors.New("finished")

// Run starts the plugin and stores its events, acknowledging each once
// durable. A crash, a hang, a failed start or an error of the plugin's run
// restarts it with backoff from the last durable position; the engine goes
// on meanwhile. Run returns nil when ctx ends or the plugin's run finishes.
func (s *PluginSource) Run(ctx context.Context, out engine.Emitter) error {
	ref := engine.SourceRef{Ruleset: s.cfg.Ruleset, Name: s.cfg.Name, Type: s.cfg.Type}
	pos, err := engine.LastPosition(ctx, out, ref)
	if err != nil {
		return fmt.Errorf("read the last durable position: %w", err)
	}
	failures := 0
	for {
		delivered, err := s.runOnce(ctx, out, ref, &pos)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errFinished) {
			s.log.Info().Int("delivered", delivered).Msg("source plugin finished")
			return nil
		}
		if errors.Is(err, ErrChecksumMismatch) {
			// Starting the changed file again cannot help: no restart.
			return err
		}
		if delivered > 0 {
			failures = 0
		}
		failures++
		wait := s.h.opts.Backoff(failures)
		n := s.h.countRestart(s.c.name)
		s.log.Error().Err(err).Int("restarts", n).Str("resume_from", pos).Dur("retry_in", wait).Msg("source plugin failed: restarting")
		if !engine.Sleep(ctx, s.clock, wait) {
			return nil
		}
	}
}

func (s *PluginSource) runOnce(ctx context.Context, out engine.Emitter, ref engine.SourceRef, pos *string) (int, error) {
	l, err := s.h.launch(s.c)
	if l != nil {
		defer forceKill(l.client)
	}
	if err != nil {
		return 0, err
	}
	args, err := json.Marshal(s.cfg.Args)
	if err != nil {
		return 0, fmt.Errorf("arguments: %w", err)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := l.rpc.Run(rctx)
	if err != nil {
		return 0, fmt.Errorf("run: %w", err)
	}
	if err := stream.Send(&proto.HostToSource{Msg: &proto.HostToSource_Start{Start: &proto.SourceStart{
		ArgsJson: args, ResumeFrom: *pos, Ruleset: ref.Ruleset, Source: ref.Name, HeartbeatMs: s.h.opts.Heartbeat.Milliseconds(),
	}}}); err != nil {
		return 0, fmt.Errorf("start: %w", err)
	}
	s.log.Info().Str("resume_from", *pos).Msg("source plugin started")
	type recv struct {
		m   *proto.SourceToHost
		err error
	}
	msgs := make(chan recv, 1)
	go func() {
		for {
			m, err := stream.Recv()
			select {
			case msgs <- recv{m, err}:
			case <-rctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	delivered := 0
	for {
		hang := engine.NewTimer(s.clock, s.h.opts.HangAfter)
		var r recv
		select {
		case <-ctx.Done():
			hang.Stop()
			return delivered, ctx.Err()
		case <-hang.C():
			return delivered, fmt.Errorf("hung: no event or heartbeat for %s", s.h.opts.HangAfter)
		case r = <-msgs:
			hang.Stop()
		}
		if r.err != nil {
			if errors.Is(r.err, io.EOF) {
				return delivered, errFinished
			}
			if l.client.Exited() {
				return delivered, fmt.Errorf("the plugin process exited: %w", r.err)
			}
			return delivered, fmt.Errorf("run: %w", r.err)
		}
		ev := r.m.GetEvent()
		if ev == nil {
			continue // a heartbeat
		}
		body := map[string]any{}
		if err := json.Unmarshal(ev.GetEventJson(), &body); err != nil {
			return delivered, fmt.Errorf("event %d is not a JSON object: %w", ev.GetSeq(), err)
		}
		if m, ok := body[engine.MetaKey].(map[string]any); ok {
			delete(m, engine.MetaUUID) // the engine names events
		}
		e := engine.NewEvent(body, ref.Name, ref.Type, s.clock.Now())
		_, err := engine.EmitWait(ctx, s.clock, out, ref, []engine.Entry{{Event: e, Position: ev.GetPosition()}})
		if fe, ok := engine.IsFilterError(err); ok {
			s.log.Error().Err(fe).Uint64("seq", ev.GetSeq()).Msg("event refused by a filter: acknowledged and skipped")
			err = nil
		}
		if err != nil {
			return delivered, fmt.Errorf("store event: %w", err)
		}
		if p := ev.GetPosition(); p != "" {
			*pos = p
		}
		delivered++
		if err := stream.Send(&proto.HostToSource{Msg: &proto.HostToSource_Ack{Ack: &proto.SourceAck{Seq: ev.GetSeq()}}}); err != nil {
			return delivered, fmt.Errorf("ack: %w", err)
		}
	}
}

// discoverSources lists the declared source plugins, then the
// rulebook-source-* binaries in dirs; the first of a name wins.
func discoverSources(dirs []string, declared []Declared) ([]candidate, []string, error) {
	return sourcePlugins.discover(dirs, declared)
}

func cloneSourceInfos(in []SourceInfo) []SourceInfo { return append([]SourceInfo(nil), in...) }
