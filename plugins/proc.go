package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/plugins/proto"
)

// ErrChecksumMismatch is wrapped by the error of a declared plugin whose
// file does not match its declared SHA-256.
var ErrChecksumMismatch = errors.New("checksum mismatch")

// ErrProtocolVersion is wrapped by the error of a plugin built for another
// plugin protocol version.
var ErrProtocolVersion = errors.New("plugin protocol version mismatch")

// proc supervises one plugin executable: it starts the process, restarts it
// with backoff after a crash or hang, and runs invocations on it.
type proc struct {
	h    *Host
	c    candidate
	name string
	log  zerolog.Logger

	// startSem admits one start at a time; waiting for it honours the
	// caller's context, unlike waiting for mu would.
	startSem chan struct{}

	mu        sync.Mutex
	client    *goplugin.Client
	rpc       proto.ActionPluginClient
	gen       uint64 // incremented on every start
	actions   []string
	failures  int // consecutive failed starts, crashes and hangs
	nextStart time.Time
	lastErr   string
	restarts  int
	stopped   bool
}

func newProc(h *Host, c candidate) *proc {
	return &proc{h: h, c: c, name: c.name, log: h.log.With().Str("plugin", c.name).Logger(), startSem: make(chan struct{}, 1)}
}

// load makes the first start and returns the plugin's description.
func (p *proc) load() (Info, error) {
	info := Info{Name: p.name, Path: p.c.path, Declared: p.c.declared}
	p.startSem <- struct{}{}
	defer func() { <-p.startSem }()
	desc, sum, client, rpc, err := p.launch()
	info.SHA256 = sum
	if err != nil {
		return info, err
	}
	if !p.install(client, rpc, desc) {
		return info, fmt.Errorf("plugin %q: the plugin host is shut down", p.name)
	}
	info.Version = desc.GetVersion()
	info.Description = desc.GetDescription()
	info.ProtocolVersion = int(desc.GetProtocolVersion())
	for _, a := range desc.GetActions() {
		info.Actions = append(info.Actions, ActionInfo{Name: a.GetName(), Description: a.GetDescription(), Schema: a.GetArgsSchema()})
	}
	return info, nil
}

// launch starts a process and checks its protocol and description. It
// touches no state of p: install makes the process current. The caller
// holds startSem.
func (p *proc) launch() (*proto.DescribeResponse, string, *goplugin.Client, proto.ActionPluginClient, error) {
	desc, sum, client, rpc, err := p.launchOnce()
	if err != nil && client != nil {
		client.Kill()
	}
	return desc, sum, client, rpc, err
}

func (p *proc) launchOnce() (*proto.DescribeResponse, string, *goplugin.Client, proto.ActionPluginClient, error) {
	sum, err := FileSHA256(p.c.path)
	if err != nil {
		return nil, "", nil, nil, fmt.Errorf("plugin %q: %w", p.name, err)
	}
	set := goplugin.PluginSet{proto.PluginKey: &grpcPlugin{client: func(c *grpc.ClientConn) any { return proto.NewActionPluginClient(c) }}}
	cfg, err := clientConfig(fmt.Sprintf("plugin %q", p.name), p.c, sum, set, p.h.opts.StartTimeout, newHCLogger(p.log), p.h.opts.StateDir)
	if err != nil {
		return nil, sum, nil, nil, err
	}
	client := goplugin.NewClient(cfg)
	cp, err := client.Client()
	if err != nil {
		return nil, sum, client, nil, p.startError(err)
	}
	raw, err := cp.Dispense(proto.PluginKey)
	if err != nil {
		return nil, sum, client, nil, fmt.Errorf("plugin %q (%q): %w", p.name, p.c.path, err)
	}
	rpc, ok := raw.(proto.ActionPluginClient)
	if !ok {
		return nil, sum, client, nil, fmt.Errorf("plugin %q (%q): dispensed %T, not an action plugin client", p.name, p.c.path, raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.h.opts.StartTimeout)
	defer cancel()
	desc, err := rpc.Describe(ctx, &proto.DescribeRequest{})
	if err != nil {
		return nil, sum, client, nil, fmt.Errorf("plugin %q (%q): describe: %w", p.name, p.c.path, err)
	}
	if v := desc.GetProtocolVersion(); v != 0 && v != proto.ProtocolVersion {
		return nil, sum, client, nil, p.versionError(int(v))
	}
	if err := p.checkDescription(desc); err != nil {
		return nil, sum, client, nil, err
	}
	return desc, sum, client, rpc, nil
}

// install makes a launched process the current one. It returns false, and
// kills the process, when the plugin was stopped meanwhile.
func (p *proc) install(client *goplugin.Client, rpc proto.ActionPluginClient, desc *proto.DescribeResponse) bool {
	names := make([]string, 0, len(desc.GetActions()))
	for _, a := range desc.GetActions() {
		names = append(names, a.GetName())
	}
	slices.Sort(names)
	p.mu.Lock()
	if p.stopped || p.h.isClosed() {
		p.mu.Unlock()
		client.Kill()
		return false
	}
	if p.actions != nil && !slices.Equal(p.actions, names) {
		p.log.Warn().Strs("was", p.actions).Strs("now", names).
			Msg("restarted plugin describes other actions; keeping the ones registered at start")
	}
	if p.actions == nil {
		p.actions = names
	}
	p.client, p.rpc = client, rpc
	p.gen++
	p.mu.Unlock()
	return true
}

func (p *proc) checkDescription(desc *proto.DescribeResponse) error {
	if len(desc.GetActions()) == 0 {
		return fmt.Errorf("plugin %q (%q) describes no actions", p.name, p.c.path)
	}
	seen := map[string]bool{}
	for _, a := range desc.GetActions() {
		if a.GetName() == "" {
			return fmt.Errorf("plugin %q (%q) describes an action without a name", p.name, p.c.path)
		}
		if seen[a.GetName()] {
			return fmt.Errorf("plugin %q (%q) describes action %q twice", p.name, p.c.path, a.GetName())
		}
		seen[a.GetName()] = true
		if _, err := compileSchema(a.GetName(), a.GetArgsSchema()); err != nil {
			return fmt.Errorf("plugin %q (%q): %w", p.name, p.c.path, err)
		}
	}
	return nil
}

var incompatibleVersion = regexp.MustCompile(`incompatible API version with plugin\. Plugin version: (-?\d+)`)

// startError makes go-plugin's start errors say what to do.
func (p *proc) startError(err error) error {
	if m := incompatibleVersion.FindStringSubmatch(err.Error()); m != nil {
		v, _ := strconv.Atoi(m[1])
		return p.versionError(v)
	}
	if errors.Is(err, goplugin.ErrChecksumsDoNotMatch) {
		return fmt.Errorf("plugin %q: %w: %q changed after its sha256 was checked; refusing to start it", p.name, ErrChecksumMismatch, p.c.path)
	}
	return fmt.Errorf("plugin %q (%q): start: %w", p.name, p.c.path, err)
}

func (p *proc) versionError(v int) error {
	return fmt.Errorf("plugin %q (%q): %w: the plugin speaks plugin protocol version %d, this engine speaks version %d; rebuild the plugin with the SDK (github.com/rulebook-dev/rulebook/plugins/sdk) of this engine's release",
		p.name, p.c.path, ErrProtocolVersion, v, proto.ProtocolVersion)
}

// spec turns one described action into an engine.ActionSpec.
func (p *proc) spec(a ActionInfo) engine.ActionSpec {
	schema, err := compileSchema(a.Name, a.Schema)
	if err != nil { // checked in checkDescription; keep Check honest anyway
		schema = nil
	}
	name := a.Name
	var published map[string]any
	if strings.TrimSpace(a.Schema) != "" {
		_ = json.Unmarshal([]byte(a.Schema), &published) // valid: it compiled
	}
	return engine.ActionSpec{
		Type:        name,
		Description: a.Description,
		Schema:      published,
		Check: func(args map[string]any) error {
			if schema == nil {
				return engine.ArgErrorf(nil, "plugin %q: action %q has no usable schema", p.name, name)
			}
			return schema.check(args)
		},
		New: func(engine.ActionEnv) (engine.Action, error) {
			return &Action{p: p, name: name}, nil
		},
	}
}

// Action runs one plugin action; it is what ActionSpec.New returns.
type Action struct {
	p    *proc
	name string
}

var _ engine.Action = (*Action)(nil)

// Run sends one attempt to the plugin. A crash, a hang past the
// invocation's deadline, or a plugin that cannot be started now is
// Retryable; the plugin's own result is passed through with secrets
// redacted.
func (a *Action) Run(ctx context.Context, inv *engine.Invocation) engine.Result {
	res := a.p.invoke(ctx, a.name, inv)
	res.Output = inv.Redact(res.Output)
	res.Error = inv.Redact(res.Error)
	return res
}

// acquire returns the running plugin, starting it when it is down and its
// backoff has passed. Waiting for another caller's start ends with ctx.
func (p *proc) acquire(ctx context.Context) (proto.ActionPluginClient, uint64, *engine.Result) {
	for {
		rpc, gen, res, mustStart := p.current()
		if !mustStart {
			return rpc, gen, res
		}
		select {
		case p.startSem <- struct{}{}:
		case <-ctx.Done():
			r := engine.RetryableFailure("plugin %q: gave up waiting for the plugin to start: %v", p.name, ctx.Err())
			return nil, 0, &r
		}
		if _, _, _, mustStart := p.current(); !mustStart {
			<-p.startSem // another caller started it (or it is backing off)
			continue
		}
		rpc, gen, res = p.restart()
		<-p.startSem
		return rpc, gen, res
	}
}

// current returns the running process, or a result explaining why there
// is none, or mustStart when the caller should start it.
func (p *proc) current() (proto.ActionPluginClient, uint64, *engine.Result, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped || p.h.isClosed() {
		r := engine.RetryableFailure("plugin %q: the plugin host is shut down", p.name)
		return nil, 0, &r, false
	}
	if p.client != nil && p.client.Exited() {
		p.downLocked("the plugin process exited")
	}
	if p.client != nil {
		return p.rpc, p.gen, nil, false
	}
	now := p.h.opts.Clock.Now()
	if now.Before(p.nextStart) {
		wait := p.nextStart.Sub(now)
		r := engine.RetryableFailure("plugin %q is down (%s); next start in %s", p.name, p.lastErr, wait.Round(time.Millisecond))
		r.RetryAfter = wait
		return nil, 0, &r, false
	}
	return nil, 0, nil, true
}

// restart starts the plugin again. The caller holds startSem.
func (p *proc) restart() (proto.ActionPluginClient, uint64, *engine.Result) {
	desc, _, client, rpc, err := p.launch()
	if err != nil {
		p.mu.Lock()
		p.failures++
		p.lastErr = err.Error()
		backoff := p.h.opts.Backoff(p.failures)
		p.nextStart = p.h.opts.Clock.Now().Add(backoff)
		p.log.Error().Err(err).Time("next_start", p.nextStart).Msg("plugin restart failed")
		p.mu.Unlock()
		if errors.Is(err, ErrChecksumMismatch) || errors.Is(err, ErrProtocolVersion) {
			r := engine.Failure("%v", err)
			return nil, 0, &r
		}
		r := engine.RetryableFailure("%v", err)
		r.RetryAfter = backoff
		return nil, 0, &r
	}
	if !p.install(client, rpc, desc) {
		r := engine.RetryableFailure("plugin %q: the plugin host is shut down", p.name)
		return nil, 0, &r
	}
	p.mu.Lock()
	p.restarts++
	gen, n := p.gen, p.restarts
	p.mu.Unlock()
	p.log.Info().Int("restarts", n).Msg("plugin restarted")
	return rpc, gen, nil
}

// downLocked records that the current process is gone and kills what is
// left of it. p.mu is held.
func (p *proc) downLocked(reason string) {
	if p.client == nil {
		return
	}
	client := p.client
	p.client, p.rpc = nil, nil
	p.failures++
	p.lastErr = reason
	p.nextStart = p.h.opts.Clock.Now().Add(p.h.opts.Backoff(p.failures))
	p.log.Error().Str("reason", reason).Time("next_start", p.nextStart).Msg("plugin down; restarting with backoff")
	forceKill(client)
}

// down is downLocked for generation gen only: a later process is left alone.
func (p *proc) down(gen uint64, reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if gen == p.gen {
		p.downLocked(reason)
	}
}

func (p *proc) exited(gen uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return gen == p.gen && p.client != nil && p.client.Exited()
}

func (p *proc) ok(gen uint64) {
	p.mu.Lock()
	if gen == p.gen {
		p.failures = 0
	}
	p.mu.Unlock()
}

func (p *proc) restartCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restarts
}

// stop ends the process for good.
func (p *proc) stop() {
	p.mu.Lock()
	p.stopped = true
	client := p.client
	p.client, p.rpc = nil, nil
	p.mu.Unlock()
	if client != nil {
		client.Kill() // graceful first, forced after go-plugin's grace
	}
	// Wait for a start in progress: install sees stopped and kills it.
	p.startSem <- struct{}{}
	<-p.startSem
}

// forceKill kills a plugin process that is hung or half dead without
// waiting for a graceful exit, then lets go-plugin clean up.
func forceKill(c *goplugin.Client) {
	if rc := c.ReattachConfig(); rc != nil && rc.Pid > 0 {
		if pr, err := os.FindProcess(rc.Pid); err == nil {
			_ = pr.Kill()
		}
	}
	c.Kill()
}

func (p *proc) invoke(ctx context.Context, action string, inv *engine.Invocation) engine.Result {
	rpc, gen, res := p.acquire(ctx)
	if res != nil {
		return *res
	}
	req, err := request(p.h.callID.Add(1), action, inv)
	if err != nil {
		return engine.Failure("plugin %q: %v", p.name, err)
	}
	resp, err := rpc.Invoke(ctx, req)
	if err != nil {
		return p.callFailed(ctx, gen, req.GetCallId(), err)
	}
	p.ok(gen)
	return result(resp)
}

// callFailed classifies a failed call. A call whose context ended is
// Retryable, and the plugin is checked for a hang after CancelGrace; a
// broken connection means the process crashed.
func (p *proc) callFailed(ctx context.Context, gen, callID uint64, err error) engine.Result {
	st, _ := status.FromError(err)
	code := st.Code()
	if ctx.Err() != nil || code == codes.DeadlineExceeded || code == codes.Canceled {
		// The plugin side may see the propagated deadline expire a moment
		// before the caller does and reset the stream: same thing.
		p.watch(gen, callID)
		if errors.Is(ctx.Err(), context.Canceled) {
			return engine.RetryableFailure("plugin %q: invocation cancelled", p.name)
		}
		return engine.RetryableFailure("plugin %q did not answer before the invocation's deadline", p.name)
	}
	switch code {
	case codes.Unavailable:
		p.down(gen, "crashed during an invocation: "+st.Message())
		return engine.RetryableFailure("plugin %q crashed during the invocation (%s); it will be restarted", p.name, st.Message())
	case codes.Unknown, codes.Internal, codes.Aborted, codes.ResourceExhausted:
		if p.exited(gen) {
			p.down(gen, "exited during an invocation: "+st.Message())
		}
		return engine.RetryableFailure("plugin %q: %s", p.name, st.Message())
	}
	return engine.Failure("plugin %q: %s: %s", p.name, code, st.Message())
}

// watch checks, after CancelGrace, whether the plugin still runs the call
// callID that the engine gave up on, or does not answer at all; either way
// it is hung and is killed, to be restarted on its next use.
func (p *proc) watch(gen, callID uint64) {
	p.h.wg.Add(1)
	go func() {
		defer p.h.wg.Done()
		t := time.NewTimer(p.h.opts.CancelGrace)
		defer t.Stop()
		select {
		case <-p.h.done:
			return
		case <-t.C:
		}
		p.mu.Lock()
		rpc, cur := p.rpc, p.gen
		p.mu.Unlock()
		if rpc == nil || cur != gen {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), p.h.opts.HealthTimeout)
		defer cancel()
		resp, err := rpc.Health(ctx, &proto.HealthRequest{})
		switch {
		case status.Code(err) == codes.Unimplemented:
			// A plugin not built with the SDK: it answered, so it is not
			// wedged, but it cannot say whether the call is still running.
		case err != nil:
			p.down(gen, fmt.Sprintf("hung: no answer to a health check within %s", p.h.opts.HealthTimeout))
		case slices.Contains(resp.GetAbandonedCalls(), callID):
			p.down(gen, fmt.Sprintf("hung: still running a call %s after its context ended", p.h.opts.CancelGrace))
		}
	}()
}

func request(callID uint64, action string, inv *engine.Invocation) (*proto.InvokeRequest, error) {
	req := &proto.InvokeRequest{
		CallId:       callID,
		InvocationId: inv.ID,
		FiringId:     inv.FiringID,
		Action:       action,
		Ruleset:      inv.Ruleset,
		Rule:         inv.Rule,
		Hosts:        inv.Hosts,
		HostPattern:  inv.HostPattern,
	}
	var err error
	args := inv.Args
	if args == nil {
		args = map[string]any{}
	}
	if req.ArgsJson, err = json.Marshal(args); err != nil {
		return nil, fmt.Errorf("arguments: %w", err)
	}
	if inv.Event != nil {
		if req.EventJson, err = json.Marshal(inv.Event); err != nil {
			return nil, fmt.Errorf("event: %w", err)
		}
	}
	if len(inv.Events) > 0 {
		if req.EventsJson, err = json.Marshal(inv.Events); err != nil {
			return nil, fmt.Errorf("events: %w", err)
		}
	}
	return req, nil
}

func result(resp *proto.InvokeResponse) engine.Result {
	r := engine.Result{
		Output:     resp.GetOutput(),
		Error:      resp.GetError(),
		RetryAfter: time.Duration(resp.GetRetryAfterMs()) * time.Millisecond,
		HTTPStatus: int(resp.GetHttpStatus()),
	}
	switch resp.GetStatus() {
	case proto.Status_STATUS_SUCCEEDED:
		r.Status = engine.Succeeded
	case proto.Status_STATUS_RETRYABLE:
		r.Status = engine.Retryable
	default:
		r.Status = engine.Failed
		if r.Error == "" {
			r.Error = fmt.Sprintf("plugin returned status %s", resp.GetStatus())
		}
	}
	var bad []string
	if b := resp.GetDetailsJson(); len(b) > 0 && json.Unmarshal(b, &r.Details) != nil {
		bad = append(bad, "details")
	}
	if b := resp.GetFactsJson(); len(b) > 0 && json.Unmarshal(b, &r.Facts) != nil {
		bad = append(bad, "facts")
	}
	if b := resp.GetEventsJson(); len(b) > 0 && json.Unmarshal(b, &r.Events) != nil {
		bad = append(bad, "events")
	}
	if len(bad) > 0 && r.Status == engine.Succeeded {
		r.Status = engine.Failed
		r.Error = fmt.Sprintf("plugin sent invalid JSON in %v", bad)
	}
	return r
}

// grpcPlugin is the host side of go-plugin's GRPCPlugin, for action and
// source plugins alike: it serves nothing and dispenses the gRPC client
// that client makes.
type grpcPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	client func(*grpc.ClientConn) any
}

func (grpcPlugin) GRPCServer(*goplugin.GRPCBroker, *grpc.Server) error {
	return errors.New("the engine does not serve plugins")
}

func (g grpcPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return g.client(conn), nil
}
