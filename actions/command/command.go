// Package command implements the run_command action: it runs a program with
// an argv list (no shell unless `shell: true` is given), the matched event as
// JSON on stdin, in its own process group so that a timeout kills everything
// it started, and classifies its exit status as success, retryable or failed.
//
// Each argv element is one argument, whatever a template put in it. With
// shell: true, argv is one string run by /bin/sh -c: shell code, in which
// event data must never be inserted (Warn reports every template that does,
// so that `rulebook validate` and `rulebook run` warn about it). Event data
// reaches a shell safely as positional arguments (args, the script's $1,
// $2, ...) or environment variables (env), each templated on its own:
//
//	run_command:
//	  shell: true
//	  argv: 'logger -t "$SRC" "$1"'
//	  args: ["{{ event.payload.msg }}"]
//	  env: {SRC: "{{ event.meta.source.name }}"}
package command

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/actions/internal/argvalue"
	"github.com/rulebook-dev/rulebook/actions/internal/headtail"
	"github.com/rulebook-dev/rulebook/actions/internal/procgroup"
	"github.com/rulebook-dev/rulebook/engine"
)

// Type is the key of the action in rulebooks.
const Type = "run_command"

// DefaultOutputLimit is how much output an invocation keeps when the action
// does not set output_limit.
const DefaultOutputLimit = headtail.DefaultLimit

// DefaultKillGrace is how long a process group has between SIGTERM and
// SIGKILL once the invocation's context ends.
const DefaultKillGrace = procgroup.DefaultKillGrace

// MaxKillGrace bounds kill_grace.
const MaxKillGrace = time.Minute

// Spec registers run_command.
func Spec() engine.ActionSpec {
	return engine.ActionSpec{
		Type:        Type,
		Description: "run a program with an argv list (no shell unless shell: true), the event as JSON on stdin",
		Check:       Check,
		Warn:        Warn,
		Schema:      Schema(),
		New: func(env engine.ActionEnv) (engine.Action, error) {
			c := New(env.Log)
			c.procs = procgroup.InDataDir(env.DataDir)
			return c, nil
		},
	}
}

// Command is the run_command action. It is safe for concurrent use.
type Command struct {
	log zerolog.Logger
	// environ returns the environment a process inherits.
	environ func() []string
	// procs runs programs through a supervisor that records their exit
	// status, so that a program which outlives a crash of the engine is
	// reattached, not run twice at once. Zero: programs run directly.
	procs procgroup.Supervisor
}

var (
	_ engine.Action          = (*Command)(nil)
	_ engine.Reattacher      = (*Command)(nil)
	_ engine.AttemptRecorder = (*Command)(nil)
)

// New returns the action; log is scoped by the caller (engine.ActionEnv:
// it names the action already).
func New(log zerolog.Logger) *Command {
	return &Command{log: log, environ: os.Environ}
}

// Stdin modes.
const (
	StdinEvent  = "event"  // the event that completed the match, as JSON
	StdinEvents = "events" // all matched events by name, as a JSON object
	StdinNone   = "none"   // nothing (/dev/null)
)

type config struct {
	argv         []string
	shell        bool
	args         []string // with shell: the script's $1, $2, ...
	env          map[string]string
	inheritEnv   bool
	dir          string
	stdin        string
	successCodes []int
	retryCodes   []int
	outputLimit  int
	killGrace    time.Duration
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Check validates run_command arguments before templates are rendered.
func Check(args map[string]any) error {
	_, err := parse(args, true)
	return err
}

// parse reads the arguments. With check, template strings are accepted
// wherever a rendered value could be valid and the result is incomplete.
func parse(args map[string]any, check bool) (config, error) {
	cfg := config{
		inheritEnv:   true,
		stdin:        StdinEvent,
		successCodes: []int{0},
		outputLimit:  DefaultOutputLimit,
		killGrace:    DefaultKillGrace,
	}
	for _, k := range argvalue.SortedKeys(args) {
		v := args[k]
		p := []string{k}
		var err error
		switch k {
		case "argv", "shell", "args":
			// read below, together
		case "env":
			cfg.env, err = parseEnv(p, v, check)
		case "inherit_env":
			cfg.inheritEnv, err = argvalue.Bool(p, v, check)
		case "dir":
			cfg.dir, err = argvalue.String(p, v, check)
			if err == nil && cfg.dir == "" {
				err = engine.ArgErrorf(p, "must not be empty")
			}
		case "stdin":
			var s string
			if s, err = argvalue.String(p, v, check); err == nil {
				switch {
				case s == StdinEvent || s == StdinEvents || s == StdinNone:
					cfg.stdin = s
				case check && engine.IsTemplate(s):
				default:
					err = engine.ArgErrorf(p, "must be %q, %q or %q, got %q", StdinEvent, StdinEvents, StdinNone, s)
				}
			}
		case "success_exit_codes":
			cfg.successCodes, err = toExitCodes(p, v, check)
		case "retry_exit_codes":
			cfg.retryCodes, err = toExitCodes(p, v, check)
		case "output_limit":
			if n, e := argvalue.Size(p, v, check, MaxOutputLimit); e != nil {
				err = e
			} else if n > 0 {
				cfg.outputLimit = n
			}
		case "kill_grace":
			if d, e := argvalue.Duration(p, v, check, MaxKillGrace); e != nil {
				err = e
			} else if d > 0 {
				cfg.killGrace = d
			}
		default:
			if !argvalue.IsPolicyKey(k) {
				err = engine.ArgErrorf(p, "unknown key (known: argv, shell, args, env, inherit_env, dir, stdin, success_exit_codes, retry_exit_codes, output_limit, kill_grace)")
			}
		}
		if err != nil {
			return cfg, err
		}
	}
	if v, ok := args["args"]; ok {
		var err error
		if cfg.args, err = parseShellArgs(v, check); err != nil {
			return cfg, err
		}
	}
	if v, ok := args["shell"]; ok {
		var err error
		if cfg.shell, err = argvalue.Bool([]string{"shell"}, v, check); err != nil {
			return cfg, err
		}
		if check && engine.IsTemplate(v) {
			// shell: "{{ ... }}" cannot be decided before rendering;
			// only the argv shapes valid either way pass.
			return cfg, checkArgvEitherWay(args["argv"])
		}
	}
	if _, ok := args["args"]; ok && !cfg.shell {
		return cfg, engine.ArgErrorf([]string{"args"}, "is for shell: true (the script's $1, $2, ...); without a shell, put the arguments in argv")
	}
	argv, err := parseArgv(args["argv"], cfg.shell, check)
	if err != nil {
		return cfg, err
	}
	cfg.argv = argv
	for _, c := range cfg.retryCodes {
		for _, s := range cfg.successCodes {
			if c == s {
				return cfg, engine.ArgErrorf([]string{"retry_exit_codes"}, "exit code %d is also in success_exit_codes", c)
			}
		}
	}
	return cfg, nil
}

func checkArgvEitherWay(v any) error {
	if _, err := parseArgv(v, false, true); err == nil {
		return nil
	}
	_, err := parseArgv(v, true, true)
	return err
}

func parseArgv(v any, shell, check bool) ([]string, error) {
	p := []string{"argv"}
	switch x := v.(type) {
	case nil:
		return nil, engine.ArgErrorf(p, "is required: a list such as [\"systemctl\", \"restart\", \"nginx\"]")
	case string:
		if shell {
			if strings.TrimSpace(x) == "" {
				return nil, engine.ArgErrorf(p, "must not be empty")
			}
			return []string{x}, nil
		}
		if check && engine.IsTemplate(x) && strings.TrimSpace(x) == x && strings.HasPrefix(x, "{{") && strings.HasSuffix(x, "}}") {
			// a template that may render to a list
			return nil, nil
		}
		return nil, engine.ArgErrorf(p, "must be a list of strings; a command line in one string runs only with shell: true")
	case []any:
		if len(x) == 0 {
			return nil, engine.ArgErrorf(p, "must not be empty")
		}
		if shell && len(x) != 1 {
			return nil, engine.ArgErrorf(p, "with shell: true must be one string, the command line for /bin/sh -c (got %d elements)", len(x))
		}
		out := make([]string, len(x))
		for i, e := range x {
			s, err := argvalue.String([]string{"argv", strconv.Itoa(i)}, e, check)
			if err != nil {
				return nil, err
			}
			out[i] = s
		}
		if out[0] == "" {
			return nil, engine.ArgErrorf([]string{"argv", "0"}, "the program must not be empty")
		}
		return out, nil
	case []string:
		l := make([]any, len(x))
		for i, s := range x {
			l[i] = s
		}
		return parseArgv(l, shell, check)
	}
	return nil, engine.ArgErrorf(p, "must be a list of strings, got %s", engine.TypeName(v))
}

// parseShellArgs reads args: a list of strings, each templated on its own,
// given to the shell script as $1, $2, ...
func parseShellArgs(v any, check bool) ([]string, error) {
	p := []string{"args"}
	switch x := v.(type) {
	case string:
		if check && engine.IsTemplate(x) {
			return nil, nil // may render to a list
		}
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			s, err := argvalue.String([]string{"args", strconv.Itoa(i)}, e, check)
			if err != nil {
				return nil, err
			}
			out[i] = s
		}
		return out, nil
	case []string:
		return append([]string{}, x...), nil
	}
	return nil, engine.ArgErrorf(p, "must be a list of strings (the script's $1, $2, ...), got %s", engine.TypeName(v))
}

// Warn reports every template that inserts event data (event, events, fact
// or facts) into a command line run by a shell: the sender chooses what the
// shell runs. Passing the data in args or env instead is safe.
func Warn(args map[string]any) []engine.ArgWarning {
	sh := args["shell"]
	if b, _ := sh.(bool); !b && !engine.IsTemplate(sh) {
		return nil
	}
	var text string
	var path []string
	switch x := args["argv"].(type) {
	case string:
		text, path = x, []string{"argv"}
	case []any:
		if len(x) == 1 {
			text, _ = x[0].(string)
			path = []string{"argv", "0"}
		}
	}
	var out []engine.ArgWarning
	for _, p := range engine.TemplateParts(text) {
		if !p.ReadsEventData() {
			continue
		}
		out = append(out, engine.ArgWarning{Path: path, Column: p.Column, Message: fmt.Sprintf(
			"shell: true runs event data as shell code: %q inserts it into the command line, so whoever sends the event chooses the command; "+
				"pass it as an argument (args: [%q], read as \"$1\") or in the environment (env: {NAME: %q}, read as \"$NAME\") instead",
			"{{ "+p.Src+" }}", "{{ "+p.Src+" }}", "{{ "+p.Src+" }}")})
	}
	return out
}

func parseEnv(path []string, v any, check bool) (map[string]string, error) {
	return argvalue.ScalarMap(path, v, check, "variable names", checkEnvName, nil)
}

func checkEnvName(p []string, k string) error {
	if !envName.MatchString(k) {
		return engine.ArgErrorf(p, "%q is not a valid environment variable name", k)
	}
	return nil
}

// Run runs the command once.
func (c *Command) Run(ctx context.Context, inv *engine.Invocation) engine.Result {
	cfg, err := parse(inv.Args, false)
	if err != nil {
		return engine.Failure("%s", inv.Redact(err.Error()))
	}
	name, args := cfg.argv[0], cfg.argv[1:]
	if cfg.shell {
		// $0 is "sh", as in `sh -c script sh arg...`; args are $1, $2, ...
		name, args = "/bin/sh", append([]string{"-c", cfg.argv[0], "sh"}, cfg.args...)
	}
	if cfg.dir != "" {
		// The kernel reports a missing working directory as if the program
		// were missing; say which it is.
		if st, err := os.Stat(cfg.dir); err != nil {
			return engine.Failure("dir: %q: %v", inv.Redact(cfg.dir), unwrapExec(err))
		} else if !st.IsDir() {
			return engine.Failure("dir: %q is not a directory", inv.Redact(cfg.dir))
		}
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = cfg.dir
	cmd.Env = c.buildEnv(cfg, inv)
	// parse accepts only the three modes.
	if cfg.stdin != StdinNone {
		var v any = inv.Event
		if cfg.stdin == StdinEvents {
			v = inv.Events
		}
		b, err := json.Marshal(v)
		if err != nil {
			return engine.Failure("stdin: %s not representable as JSON: %v", cfg.stdin, err)
		}
		cmd.Stdin = bytes.NewReader(append(b, '\n'))
	}
	out := headtail.New(cfg.outputLimit)
	cmd.Stdout, cmd.Stderr = out, out

	po := c.procs.Run(ctx, cmd, cfg.killGrace, inv.ID, "")
	res := c.result(cfg, inv, po, out.String())
	if n := out.Truncated(); n > 0 {
		res.Details["output_truncated_bytes"] = n
	}
	res.Details["output_bytes"] = out.Total()
	c.log.Debug().Str("invocation", inv.ID).Str("status", string(res.Status)).
		Int("exit_code", po.ExitCode).Dur("duration", po.Duration).Msg("command finished")
	return res
}

// Reattach implements engine.Reattacher: it waits for the program that a
// crashed engine left running for inv (or kills it when ctx ends) and
// returns its result when its supervisor recorded it.
func (c *Command) Reattach(ctx context.Context, inv *engine.Invocation) (engine.Result, bool) {
	cfg, err := parse(inv.Args, false)
	grace := DefaultKillGrace
	if err == nil {
		grace = cfg.killGrace
	}
	r := c.procs.Reattach(ctx, inv.ID, grace)
	if !r.Known {
		return engine.Result{}, false
	}
	if err != nil {
		return engine.Failure("%s", inv.Redact(err.Error())), true
	}
	res := c.result(cfg, inv, r.Outcome, r.Output)
	res.Details["reattached"] = true
	c.log.Info().Str("invocation", inv.ID).Str("status", string(res.Status)).
		Int("exit_code", r.Outcome.ExitCode).Msg("reattached to a command left by an earlier process")
	return res, true
}

// result classifies how the program ended, with its output.
func (c *Command) result(cfg config, inv *engine.Invocation, po procgroup.Outcome, output string) engine.Result {
	res := classify(cfg, po)
	res.Output = inv.Redact(output)
	res.Error = inv.Redact(res.Error)
	if res.Status != engine.Succeeded {
		if last := lastLine(res.Output); last != "" && po.StartErr == nil {
			res.Error += ": " + last
		}
	}
	details := map[string]any{"duration_ms": po.Duration.Milliseconds()}
	if po.Signaled {
		details["signal"] = po.Signal.String()
		if po.CtxErr == nil {
			res.Signal = procgroup.SignalName(po.Signal)
		}
	}
	if po.HeldOpen {
		details["output_held_open"] = true
	}
	res.Details = details
	return res
}

func (c *Command) buildEnv(cfg config, inv *engine.Invocation) []string {
	var env []string
	if cfg.inheritEnv {
		env = append(env, c.environ()...)
	} else if path, ok := os.LookupEnv("PATH"); ok {
		env = append(env, "PATH="+path)
	}
	env = append(env,
		"RULEBOOK_INVOCATION_ID="+inv.ID,
		"RULEBOOK_RULESET="+inv.Ruleset,
		"RULEBOOK_RULE="+inv.Rule,
	)
	keys := make([]string, 0, len(cfg.env))
	for k := range cfg.env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+cfg.env[k])
	}
	return env // exec keeps the last value of a duplicated name
}

func classify(cfg config, po procgroup.Outcome) engine.Result {
	prog := cfg.argv[0]
	if cfg.shell {
		prog = "/bin/sh"
	}
	switch {
	case po.CtxErr != nil:
		r := engine.RetryableFailure("command %s", ctxReason(po.CtxErr))
		if po.ExitCode >= 0 && !po.Signaled {
			r.ExitCode = intPtr(po.ExitCode)
		}
		return r
	case po.StartErr != nil:
		// A missing program or directory, a permission problem: trying
		// again does not help.
		return engine.Failure("argv.0: cannot start %q: %v", prog, unwrapExec(po.StartErr))
	case po.WaitErr != nil:
		return engine.RetryableFailure("command %q: %v", prog, po.WaitErr)
	case po.Signaled:
		// Killed from outside (the OOM killer, an operator): may work next
		// time.
		return engine.RetryableFailure("command killed by signal %s", po.Signal)
	}
	code := po.ExitCode
	r := engine.Result{ExitCode: intPtr(code)}
	switch {
	case containsInt(cfg.successCodes, code):
		r.Status = engine.Succeeded
	case containsInt(cfg.retryCodes, code):
		r.Status = engine.Retryable
		r.Error = fmt.Sprintf("command exited with status %d (retryable)", code)
	default:
		r.Status = engine.Failed
		r.Error = fmt.Sprintf("command exited with status %d", code)
	}
	return r
}

func ctxReason(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out; its process group was killed"
	}
	return "cancelled; its process group was killed"
}

func unwrapExec(err error) error {
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func containsInt(l []int, n int) bool {
	for _, x := range l {
		if x == n {
			return true
		}
	}
	return false
}

func intPtr(n int) *int { return &n }

// lastLine returns the last non-empty line of s, shortened.
func lastLine(s string) string {
	s = strings.TrimRight(s, "\r\n\t ")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		s = string(headtail.TrimCutRuneEnd([]byte(s[:200]))) + "..."
	}
	return s
}

// Records implements engine.AttemptRecorder: programs run supervised,
// recorded, when the action has a records directory.
func (c *Command) Records() bool { return c.procs.Dir != "" }

// LeftBehind implements engine.AttemptRecorder.
func (c *Command) LeftBehind(id string) bool { return c.procs.LeftBehind(id) }

// Settle implements engine.AttemptRecorder: the attempt's result is
// durable, its records go.
func (c *Command) Settle(inv *engine.Invocation) { c.procs.Release(inv.ID) }

// Prune implements engine.AttemptRecorder.
func (c *Command) Prune(keep map[string]bool) int { return c.procs.Prune(keep) }
