// Package playbook implements the run_playbook and run_module actions: they
// run the real ansible-playbook and ansible (ad-hoc) commands with the
// matched events as ansible_eda.event/events, passed through a private vars
// file, capture the output and the recap through an embedded callback plugin,
// and feed set_stats data back as facts or events.
package playbook

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/actions/internal/argvalue"
	"github.com/rulebook-dev/rulebook/actions/internal/headtail"
	"github.com/rulebook-dev/rulebook/actions/internal/procgroup"
	"github.com/rulebook-dev/rulebook/engine"
)

// Action types.
const (
	PlaybookType = "run_playbook"
	ModuleType   = "run_module"
)

// Ansible's exit codes (ansible-core 2.14).
const (
	exitOK             = 0
	exitError          = 1
	exitHostFailed     = 2
	exitUnreachable    = 3 // documented; 2.14 reports unreachable hosts as 4
	exitUnreachOrParse = 4
	exitInterrupted    = 99
)

// DefaultOutputLimit is how much output an invocation keeps when the action
// does not set output_limit.
const DefaultOutputLimit = headtail.DefaultLimit

// DefaultKillGrace is how long a process group has between SIGTERM and
// SIGKILL once the invocation's context ends.
const DefaultKillGrace = procgroup.DefaultKillGrace

// MaxKillGrace bounds kill_grace.
const MaxKillGrace = time.Minute

// MaxOutputLimit bounds output_limit: the audit trail is not a log store.
const MaxOutputLimit = 16 << 20

//go:embed rulebook_stats.py
var callbackPlugin []byte

const callbackName = "rulebook_stats"

// PlaybookSpec registers run_playbook.
func PlaybookSpec() engine.ActionSpec {
	return engine.ActionSpec{
		Type:        PlaybookType,
		Description: "run an Ansible playbook with ansible-playbook; the matched events are ansible_eda.event/events",
		Check:       CheckPlaybook,
		Schema:      PlaybookSchema(),
		New: func(env engine.ActionEnv) (engine.Action, error) {
			return New(ModePlaybook, env), nil
		},
	}
}

// WithInventory makes the actions of spec (PlaybookSpec, ModuleSpec) use
// inventory when an invocation names none, as ansible-rulebook's
// --inventory does.
func WithInventory(spec engine.ActionSpec, inventory string) engine.ActionSpec {
	if inventory == "" {
		return spec
	}
	build := spec.New
	spec.New = func(env engine.ActionEnv) (engine.Action, error) {
		act, err := build(env)
		if a, ok := act.(*Ansible); ok {
			a.Inventory = inventory
		}
		return act, err
	}
	return spec
}

// ModuleSpec registers run_module.
func ModuleSpec() engine.ActionSpec {
	return engine.ActionSpec{
		Type:        ModuleType,
		Description: "run one Ansible module ad hoc with ansible; the matched events are ansible_eda.event/events",
		Check:       CheckModule,
		Schema:      ModuleSchema(),
		New: func(env engine.ActionEnv) (engine.Action, error) {
			return New(ModeModule, env), nil
		},
	}
}

// Mode says which Ansible command an Ansible action runs.
type Mode int

// Modes.
const (
	ModePlaybook Mode = iota // ansible-playbook
	ModeModule               // ansible (ad hoc)
)

// Ansible runs ansible-playbook or ansible. It is safe for concurrent use.
type Ansible struct {
	mode Mode
	log  zerolog.Logger
	// TempDir is where per-run scratch directories go ("" = os.TempDir).
	tempDir string
	// Bin is the program to run: ansible-playbook or ansible by default,
	// looked up in PATH at run time.
	Bin string
	// environ returns the environment the process inherits.
	environ func() []string
	// Inventory is used when the action names none (ansible-rulebook's
	// --inventory); "" falls back to the matched events' hosts.
	Inventory string
	// procs runs ansible through a supervisor that records its exit
	// status, so that a run which outlives a crash of the engine is
	// reattached, not run twice at once (see procgroup.Supervisor).
	procs procgroup.Supervisor
	// scratch holds, by invocation ID, the scratch directories of
	// supervised runs that ended, until Settle: a crash before the result
	// is durable reattaches the run, whose set_stats are read from there.
	scratchMu sync.Mutex
	scratch   map[string][]string
}

var (
	_ engine.Action          = (*Ansible)(nil)
	_ engine.Reattacher      = (*Ansible)(nil)
	_ engine.AttemptRecorder = (*Ansible)(nil)
)

// New returns the action for mode. Scratch files go under env.DataDir/tmp
// and ansible runs supervised, its records in env.DataDir/procs, when
// DataDir is set.
func New(mode Mode, env engine.ActionEnv) *Ansible {
	a := &Ansible{
		mode:    mode,
		log:     env.Log, // names the action already (engine.ActionEnv)
		Bin:     "ansible-playbook",
		environ: os.Environ,
	}
	if mode == ModeModule {
		a.Bin = "ansible"
	}
	if env.DataDir != "" {
		a.tempDir = filepath.Join(env.DataDir, "tmp")
		a.procs = procgroup.InDataDir(env.DataDir)
		a.removeStale()
	}
	return a
}

// scratchPrefix starts the name of every scratch directory; the process id
// after it tells whose the directory is.
const scratchPrefix = "ansible-"

// removeStale deletes the scratch directories that an earlier process
// (one that crashed or was killed) left in tempDir: their vars files may
// hold resolved secrets. Directories of this process are kept, and so are
// those of an ansible run that may outlive its engine: Reattach removes
// them once it is over.
func (a *Ansible) removeStale() {
	entries, err := os.ReadDir(a.tempDir)
	if err != nil {
		return
	}
	keep := map[string]bool{}
	for _, n := range a.procs.Notes() {
		keep[n] = true
	}
	self := fmt.Sprintf("%s%d-", scratchPrefix, os.Getpid())
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || !strings.HasPrefix(name, scratchPrefix) || strings.HasPrefix(name, self) || keep[filepath.Join(a.tempDir, name)] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(a.tempDir, name)); err != nil {
			a.log.Warn().Err(err).Str("dir", name).Msg("cannot remove stale scratch directory")
		} else {
			a.log.Info().Str("dir", name).Msg("removed stale scratch directory")
		}
	}
}

type config struct {
	name        string
	collection  bool
	inventory   string
	extraVars   map[string]any
	limit       []string
	limitSet    bool
	verbosity   int
	check       bool
	connection  string
	setFacts    bool
	postEvents  bool
	moduleArgs  any // map[string]any or string
	outputLimit int
	killGrace   time.Duration
}

var (
	// collectionPlaybook is a playbook named by FQCN: ns.collection.play.
	collectionPlaybook = regexp.MustCompile(`^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*\.[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$`)
	moduleName         = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)
	connectionName     = moduleName
	// freeFormModules take their arguments as one string.
	freeFormModules = map[string]bool{"command": true, "shell": true, "raw": true, "script": true, "win_command": true, "win_shell": true}
)

// CheckPlaybook validates run_playbook arguments before rendering.
func CheckPlaybook(args map[string]any) error {
	_, err := parse(ModePlaybook, args, true)
	return err
}

// CheckModule validates run_module arguments before rendering.
func CheckModule(args map[string]any) error {
	_, err := parse(ModeModule, args, true)
	return err
}

func knownKeys(mode Mode) []string {
	common := []string{"name", "inventory", "extra_vars", "limit", "verbosity", "check", "connection", "output_limit", "kill_grace"}
	if mode == ModeModule {
		return append(common, "module_args")
	}
	return append(common, "set_facts", "post_events")
}

func parse(mode Mode, args map[string]any, check bool) (config, error) {
	cfg := config{outputLimit: DefaultOutputLimit, killGrace: DefaultKillGrace}
	known := knownKeys(mode)
	isKnown := map[string]bool{}
	for _, k := range known {
		isKnown[k] = true
	}
	for _, k := range argvalue.SortedKeys(args) {
		v, p := args[k], []string{k}
		var err error
		if !isKnown[k] {
			if argvalue.IsPolicyKey(k) {
				continue
			}
			return cfg, engine.ArgErrorf(p, "unknown key (known: %s)", strings.Join(known, ", "))
		}
		switch k {
		case "name":
			err = parseName(mode, &cfg, v, check)
		case "inventory":
			cfg.inventory, err = argvalue.String(p, v, check)
			if err == nil {
				err = checkInventory(cfg.inventory, check)
			}
		case "extra_vars":
			if s, ok := v.(string); ok && check && engine.IsTemplate(s) {
				break
			}
			m, ok := v.(map[string]any)
			if !ok {
				err = engine.ArgErrorf(p, "must be a map of variables, got %s", engine.TypeName(v))
				break
			}
			if _, ok := m["ansible_eda"]; ok {
				err = engine.ArgErrorf(argvalue.AppendPath(p, "ansible_eda"), "is set by rulebook to the matched events and cannot be given")
			}
			cfg.extraVars = m
		case "limit":
			cfg.limitSet = true
			cfg.limit, err = parseLimit(p, v, check)
		case "verbosity":
			var tmpl bool
			cfg.verbosity, tmpl, err = argvalue.Int(p, v, check)
			if err == nil && !tmpl && (cfg.verbosity < 0 || cfg.verbosity > 4) {
				err = engine.ArgErrorf(p, "must be 0 to 4, got %d", cfg.verbosity)
			}
		case "check":
			cfg.check, err = argvalue.Bool(p, v, check)
		case "connection":
			cfg.connection, err = argvalue.String(p, v, check)
			if err == nil && !(check && engine.IsTemplate(cfg.connection)) && !connectionName.MatchString(cfg.connection) {
				err = engine.ArgErrorf(p, "%q is not a connection plugin name (e.g. local, ssh)", cfg.connection)
			}
		case "set_facts":
			cfg.setFacts, err = argvalue.Bool(p, v, check)
		case "post_events":
			cfg.postEvents, err = argvalue.Bool(p, v, check)
		case "module_args":
			switch x := v.(type) {
			case map[string]any, string:
				cfg.moduleArgs = x
			default:
				err = engine.ArgErrorf(p, "must be a map of module arguments or a free-form string, got %s", engine.TypeName(v))
			}
		case "output_limit":
			var n int
			if n, err = argvalue.Size(p, v, check, MaxOutputLimit); err == nil && n > 0 {
				cfg.outputLimit = n
			}
		case "kill_grace":
			var d time.Duration
			if d, err = argvalue.Duration(p, v, check, MaxKillGrace); err == nil && d > 0 {
				cfg.killGrace = d
			}
		}
		if err != nil {
			return cfg, err
		}
	}
	if _, ok := args["name"]; !ok {
		if mode == ModeModule {
			return cfg, engine.ArgErrorf([]string{"name"}, "is required: the module to run, e.g. ansible.builtin.service")
		}
		return cfg, engine.ArgErrorf([]string{"name"}, "is required: a playbook path or a collection playbook (ns.collection.playbook)")
	}
	if s, ok := cfg.moduleArgs.(string); ok && !(check && engine.IsTemplate(s)) && cfg.name != "" {
		short := cfg.name[strings.LastIndexByte(cfg.name, '.')+1:]
		if !freeFormModules[short] {
			return cfg, engine.ArgErrorf([]string{"module_args"}, "a string is free-form arguments, which only command, shell, raw and script take; give %q a map", cfg.name)
		}
	}
	return cfg, nil
}

func parseName(mode Mode, cfg *config, v any, check bool) error {
	p := []string{"name"}
	s, err := argvalue.String(p, v, check)
	if err != nil {
		return err
	}
	if strings.TrimSpace(s) == "" {
		return engine.ArgErrorf(p, "must not be empty")
	}
	if check && engine.IsTemplate(s) {
		return nil
	}
	cfg.name = s
	if strings.HasPrefix(s, "-") {
		return engine.ArgErrorf(p, "%q must not start with \"-\"", s)
	}
	if mode == ModeModule {
		if !moduleName.MatchString(s) {
			return engine.ArgErrorf(p, "%q is not a module name (e.g. ansible.builtin.copy)", s)
		}
		return nil
	}
	if !strings.ContainsRune(s, '/') && !strings.HasSuffix(s, ".yml") && !strings.HasSuffix(s, ".yaml") && collectionPlaybook.MatchString(s) {
		cfg.collection = true
		return nil
	}
	st, err := os.Stat(s)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return engine.ArgErrorf(p, "playbook %q does not exist", s)
	case err != nil:
		return engine.ArgErrorf(p, "playbook %q: %v", s, unwrapPathErr(err))
	case st.IsDir():
		return engine.ArgErrorf(p, "playbook %q is a directory", s)
	}
	return nil
}

// checkInventory checks a literal inventory path; an inline host list
// ("web1,web2,") is passed as is.
func checkInventory(s string, check bool) error {
	p := []string{"inventory"}
	if check && engine.IsTemplate(s) {
		return nil
	}
	if strings.TrimSpace(s) == "" {
		return engine.ArgErrorf(p, "must not be empty")
	}
	if strings.HasPrefix(s, "-") {
		return engine.ArgErrorf(p, "%q must not start with \"-\"", s)
	}
	if strings.Contains(s, ",") {
		return nil
	}
	if _, err := os.Stat(s); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return engine.ArgErrorf(p, "inventory %q does not exist", s)
		}
		return engine.ArgErrorf(p, "inventory %q: %v", s, unwrapPathErr(err))
	}
	return nil
}

func parseLimit(p []string, v any, check bool) ([]string, error) {
	switch x := v.(type) {
	case string:
		if check && engine.IsTemplate(x) {
			return nil, nil
		}
		if strings.TrimSpace(x) == "" {
			return nil, engine.ArgErrorf(p, "must not be empty")
		}
		return []string{x}, nil
	case []any:
		out := make([]string, 0, len(x))
		for i, e := range x {
			s, err := argvalue.String(argvalue.AppendPath(p, fmt.Sprint(i)), e, check)
			if err != nil {
				return nil, err
			}
			if strings.TrimSpace(s) == "" || strings.Contains(s, ",") && !(check && engine.IsTemplate(s)) {
				return nil, engine.ArgErrorf(argvalue.AppendPath(p, fmt.Sprint(i)), "%q is not a host or pattern", s)
			}
			out = append(out, s)
		}
		if len(out) == 0 {
			return nil, engine.ArgErrorf(p, "must not be empty")
		}
		return out, nil
	}
	if !check && v != nil {
		return []string{engine.Text(v)}, nil
	}
	return nil, engine.ArgErrorf(p, "must be a host pattern or a list of hosts, got %s", engine.TypeName(v))
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// plainHost matches a host name or address that is not an Ansible pattern.
var plainHost = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.\-]*$|^[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*$`)

// eventHosts checks the hosts taken from events (meta.hosts): they come
// from outside, so they must be host names, not patterns ("all", "*",
// "@file", "!prod"). A group name cannot be told from a host name without
// the inventory and passes.
func eventHosts(hosts []string) ([]string, error) {
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		if !plainHost.MatchString(h) || h == "all" || h == "ungrouped" {
			return nil, fmt.Errorf("meta.hosts: %q is not a host name", h)
		}
		out = append(out, h)
	}
	return out, nil
}

// target works out --limit and the inline inventory.
func (cfg *config) target(inv *engine.Invocation) (limit string, inline []string, err error) {
	if cfg.limitSet {
		limit = strings.Join(cfg.limit, ",")
		inline = cfg.limit
		for _, h := range cfg.limit {
			if !plainHost.MatchString(h) {
				inline = nil
				break
			}
		}
		return limit, inline, nil
	}
	if len(inv.Hosts) > 0 {
		hosts, err := eventHosts(inv.Hosts)
		if err != nil {
			return "", nil, err
		}
		return strings.Join(hosts, ","), hosts, nil
	}
	return inv.HostPattern, nil, nil
}

// Run runs ansible-playbook or ansible once.
func (a *Ansible) Run(ctx context.Context, inv *engine.Invocation) engine.Result {
	cfg, err := parse(a.mode, inv.Args, false)
	if err != nil {
		return engine.Failure("%s", inv.Redact(err.Error()))
	}
	limit, inline, err := cfg.target(inv)
	if err != nil {
		return engine.Failure("%s", inv.Redact(err.Error()))
	}
	bin, err := exec.LookPath(a.Bin)
	if err != nil {
		return engine.Failure("%s is not installed: %v", a.Bin, unwrapExecErr(err))
	}
	if a.tempDir != "" {
		if err := os.MkdirAll(a.tempDir, 0o700); err != nil {
			return engine.RetryableFailure("scratch directory: %v", err)
		}
	}
	tmp, err := os.MkdirTemp(a.tempDir, fmt.Sprintf("%s%d-%s-", scratchPrefix, os.Getpid(), sanitizeID(inv.ID)))
	if err != nil {
		return engine.RetryableFailure("scratch directory: %v", err)
	}
	ran := false
	defer func() {
		if ran && a.procs.Dir != "" {
			a.holdScratch(inv.ID, tmp)
			return
		}
		_ = os.RemoveAll(tmp)
	}()
	pluginDir := filepath.Join(tmp, "callback")
	if err := os.Mkdir(pluginDir, 0o700); err != nil {
		return engine.RetryableFailure("scratch directory: %v", err)
	}
	if err := os.WriteFile(filepath.Join(pluginDir, callbackName+".py"), callbackPlugin, 0o600); err != nil {
		return engine.RetryableFailure("callback plugin: %v", err)
	}
	varsPath := filepath.Join(tmp, "vars.yml")
	if err := writeVarsFile(varsPath, a.vars(cfg, inv)); err != nil {
		return engine.Failure("extra_vars: %s", inv.Redact(err.Error()))
	}
	statsPath := filepath.Join(tmp, "stats.json")

	argv := a.argv(cfg, limit, inline, varsPath)
	cmd := exec.CommandContext(ctx, bin, argv...)
	cmd.Env = a.env(pluginDir, statsPath)
	out := headtail.New(cfg.outputLimit)
	cmd.Stdout, cmd.Stderr = out, out
	ran = true
	po := a.procs.Run(ctx, cmd, cfg.killGrace, inv.ID, tmp)

	st, statsErr := readStats(statsPath)
	res := a.result(cfg, inv, po, st, statsErr, out.String())
	res.Details["command"] = inv.Redact(strings.Join(append([]string{a.Bin}, argv...), " "))
	res.Details["output_bytes"] = out.Total()
	if n := out.Truncated(); n > 0 {
		res.Details["output_truncated_bytes"] = n
	}
	a.log.Debug().Str("invocation", inv.ID).Str("status", string(res.Status)).
		Int("exit_code", po.ExitCode).Dur("duration", po.Duration).Msg("ansible finished")
	return res
}

// Reattach implements engine.Reattacher: it waits for the ansible run that
// a crashed engine left running for inv (or kills it when ctx ends) and
// returns its result, recap and set_stats included, when its supervisor
// recorded it.
func (a *Ansible) Reattach(ctx context.Context, inv *engine.Invocation) (engine.Result, bool) {
	cfg, err := parse(a.mode, inv.Args, false)
	grace := DefaultKillGrace
	if err == nil {
		grace = cfg.killGrace
	}
	r := a.procs.Reattach(ctx, inv.ID, grace)
	if r.Note != "" && a.tempDir != "" && filepath.Dir(r.Note) == a.tempDir {
		defer os.RemoveAll(r.Note)
	}
	if !r.Known {
		return engine.Result{}, false
	}
	if err != nil {
		return engine.Failure("%s", inv.Redact(err.Error())), true
	}
	var st *runStats
	var statsErr error
	if r.Note != "" {
		st, statsErr = readStats(filepath.Join(r.Note, "stats.json"))
	}
	res := a.result(cfg, inv, r.Outcome, st, statsErr, r.Output)
	res.Details["reattached"] = true
	a.log.Info().Str("invocation", inv.ID).Str("status", string(res.Status)).
		Int("exit_code", r.Outcome.ExitCode).Msg("reattached to an ansible run left by an earlier process")
	return res, true
}

// result classifies how ansible ended, with its output and recap.
func (a *Ansible) result(cfg config, inv *engine.Invocation, po procgroup.Outcome, st *runStats, statsErr error, output string) engine.Result {
	res := classify(a.Bin, po, st)
	res.Output = inv.Redact(output)
	if res.Status != engine.Succeeded && po.StartErr == nil && po.CtxErr == nil && (st == nil || len(st.Failures) == 0) {
		// No task failed: the reason is in the output (an ERROR! line).
		if l := errorLine(res.Output); l != "" {
			res.Error += ": " + l
		}
	}
	res.Error = inv.Redact(res.Error)
	details := map[string]any{"duration_ms": po.Duration.Milliseconds()}
	if po.Signaled && po.CtxErr == nil {
		res.Signal = procgroup.SignalName(po.Signal)
	}
	if st != nil {
		details["recap"] = st.recap()
		if len(st.Failures) > 0 {
			details["failures"] = redactAny(inv, st.Failures)
		}
		if len(st.Custom) > 0 {
			details["set_stats"] = redactAny(inv, st.Custom)
		}
		if res.Status == engine.Succeeded {
			res.Facts, res.Events = feedback(cfg, st)
		}
	} else if po.StartErr == nil && po.CtxErr == nil && statsErr != nil {
		details["stats_error"] = statsErr.Error()
	}
	res.Details = details
	return res
}

// feedback returns the set_stats data to feed back as facts (set_facts)
// and as events (post_events).
func feedback(cfg config, st *runStats) (facts, events []map[string]any) {
	if !cfg.setFacts && !cfg.postEvents {
		return nil, nil
	}
	if cfg.setFacts {
		facts = st.customStats()
	}
	if cfg.postEvents {
		events = st.customStats() // a copy of its own: the engine may change either
	}
	return facts, events
}

func (a *Ansible) vars(cfg config, inv *engine.Invocation) map[string]any {
	vars := make(map[string]any, len(cfg.extraVars)+2)
	for k, v := range cfg.extraVars {
		vars[k] = v
	}
	events := map[string]any{}
	for k, v := range inv.Events {
		events[k] = v
	}
	var event any = map[string]any{}
	if inv.Event != nil {
		event = inv.Event
	}
	vars["ansible_eda"] = map[string]any{
		"event":         event,
		"events":        events,
		"ruleset":       inv.Ruleset,
		"rule":          inv.Rule,
		"invocation_id": inv.ID,
	}
	if a.mode == ModeModule && cfg.moduleArgs != nil {
		vars[moduleArgsVar] = cfg.moduleArgs
	}
	return vars
}

// moduleArgsVar carries run_module's module_args, so that they are neither
// on the command line nor templated again by Ansible.
const moduleArgsVar = "rulebook_module_args"

func (a *Ansible) argv(cfg config, limit string, inline []string, varsPath string) []string {
	var argv []string
	if a.mode == ModeModule {
		argv = append(argv, "all", "-m", cfg.name)
		if cfg.moduleArgs != nil {
			argv = append(argv, "-a", "{{ "+moduleArgsVar+" }}")
		}
	}
	switch {
	case cfg.inventory != "":
		argv = append(argv, "-i", cfg.inventory)
	case a.Inventory != "":
		argv = append(argv, "-i", a.Inventory)
	case len(inline) > 0:
		argv = append(argv, "-i", strings.Join(inline, ",")+",")
	}
	if limit != "" {
		argv = append(argv, "--limit", limit)
	}
	if cfg.connection != "" {
		argv = append(argv, "-c", cfg.connection)
	}
	if cfg.verbosity > 0 {
		argv = append(argv, "-"+strings.Repeat("v", cfg.verbosity))
	}
	if cfg.check {
		argv = append(argv, "--check")
	}
	argv = append(argv, "-e", "@"+varsPath)
	if a.mode == ModePlaybook {
		argv = append(argv, cfg.name)
	}
	return argv
}

func (a *Ansible) env(pluginDir, statsPath string) []string {
	env := a.environ()
	plugins := pluginDir
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "ANSIBLE_CALLBACK_PLUGINS="); ok && v != "" {
			plugins += string(os.PathListSeparator) + v
		}
	}
	return append(env,
		"ANSIBLE_CALLBACK_PLUGINS="+plugins,
		// ad hoc runs load extra callbacks only with this
		"ANSIBLE_LOAD_CALLBACK_PLUGINS=1",
		"RULEBOOK_STATS_FILE="+statsPath,
		"ANSIBLE_NOCOLOR=1",
		"ANSIBLE_RETRY_FILES_ENABLED=0",
		"PYTHONUNBUFFERED=1",
	)
}

func sanitizeID(id string) string {
	b := []byte(id)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			b[i] = '_'
		}
	}
	if len(b) > 40 {
		b = b[:40]
	}
	return string(b)
}

func unwrapExecErr(err error) error {
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	return err
}

func redactAny(inv *engine.Invocation, v any) any {
	if len(inv.Secrets) == 0 {
		return v
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var out any
	if err := json.Unmarshal([]byte(redactJSON(inv, string(raw))), &out); err != nil {
		return "******"
	}
	return out
}

// redactJSON masks secrets in JSON text, also in their JSON-escaped form.
func redactJSON(inv *engine.Invocation, s string) string {
	for _, sec := range inv.Secrets {
		if sec == "" {
			continue
		}
		q, _ := json.Marshal(sec)
		esc := string(q[1 : len(q)-1])
		s = strings.ReplaceAll(s, esc, "******")
	}
	return s
}

// Records implements engine.AttemptRecorder: programs run supervised,
// recorded, when the action has a records directory.
func (a *Ansible) Records() bool { return a.procs.Dir != "" }

// LeftBehind implements engine.AttemptRecorder.
func (a *Ansible) LeftBehind(id string) bool { return a.procs.LeftBehind(id) }

// Settle implements engine.AttemptRecorder: the attempt's result is
// durable; its records and its scratch directory go.
func (a *Ansible) Settle(inv *engine.Invocation) {
	a.procs.Release(inv.ID)
	a.scratchMu.Lock()
	dirs := a.scratch[inv.ID]
	delete(a.scratch, inv.ID)
	a.scratchMu.Unlock()
	for _, d := range dirs {
		_ = os.RemoveAll(d)
	}
}

// holdScratch keeps the scratch directory of a run that ended until
// Settle.
func (a *Ansible) holdScratch(id, dir string) {
	a.scratchMu.Lock()
	defer a.scratchMu.Unlock()
	if a.scratch == nil {
		a.scratch = map[string][]string{}
	}
	a.scratch[id] = append(a.scratch[id], dir)
}

// Prune implements engine.AttemptRecorder. The records directory is
// shared with run_command, whose Prune may remove ansible's records first:
// so the scratch directories go by what is left (removeStale keeps those a
// remaining record names), not by what this call removed.
func (a *Ansible) Prune(keep map[string]bool) int {
	n := a.procs.Prune(keep)
	if a.tempDir != "" {
		a.removeStale()
	}
	return n
}
