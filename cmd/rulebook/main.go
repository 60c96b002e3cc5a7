// Command rulebook runs event-driven automation: event sources feed rules
// written in YAML rulebooks, and matching rules run remediation actions.
//
//	rulebook run RULEBOOK        run until the sources end or a shutdown action
//	rulebook validate RULEBOOK…  report every problem with file:line:col
//	rulebook test TESTFILE…      unit-test rulebooks in virtual time
//	rulebook report              per-rule evidence from the audit trail
//	rulebook backtest NEW.yml    replay recorded events through a rulebook change
//	rulebook explain RULEBOOK EVENT.json  why each rule would fire or not
//	rulebook describe ACTION     list an action's (or a source's) arguments
//	rulebook convert RULEBOOK    print an EDA rulebook in the native form
//	rulebook schema              print the rulebook JSON Schema
//	rulebook version             print the version
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `rulebook turns events into remediation.

Usage:
  rulebook run RULEBOOK [flags]       run a rulebook until its sources end or a shutdown action
  rulebook validate RULEBOOK... [flags] check rulebooks; every problem with file:line:col
  rulebook test TESTFILE... [flags]   run rulebook unit tests in virtual time
  rulebook convert RULEBOOK [flags]   print a rulebook written for ansible-rulebook in the native form
  rulebook explain RULEBOOK EVENT.json [flags]  say what each rule would do with one event
  rulebook audit [flags]              list what fired and what the actions did
  rulebook report [flags]             per rule: firings, action outcomes, latency, approvals
  rulebook backtest NEW.yml [flags]   replay recorded events through a rulebook; diff its firings
  rulebook approve|reject ID [flags]  decide an action waiting for approval (approve mode)
  rulebook plugins list|describe NAME show installed action plugins
  rulebook describe ACTION|SOURCE     list an action's or a source's arguments
  rulebook schema                     print the JSON Schema of the rulebook format
  rulebook version                    print the version

Run "rulebook COMMAND --help" for the flags of a command.
`

// errUsage marks errors already explained by a usage message.
var errUsage = errors.New("usage")

// exitError carries an exit status without a message of its own.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "run":
		err = cmdRun(rest, stdin, stdout, stderr)
	case "validate":
		err = cmdValidate(rest, stdout, stderr)
	case "test":
		err = cmdTest(rest, stdout, stderr)
	case "convert":
		err = cmdConvert(rest, stdout, stderr)
	case "explain":
		err = cmdExplain(rest, stdin, stdout, stderr)
	case "audit":
		err = cmdAudit(rest, stdout, stderr)
	case "backtest":
		err = cmdBacktest(rest, stdout, stderr)
	case "report":
		err = cmdReport(rest, stdout, stderr)
	case "approve":
		err = cmdDecide("approve", "approved", rest, stdout, stderr)
	case "reject":
		err = cmdDecide("reject", "rejected", rest, stdout, stderr)
	case "plugins":
		err = cmdPlugins(rest, stdout, stderr)
	case "schema":
		err = cmdSchema(rest, stdout, stderr)
	case "describe":
		err = cmdDescribe(rest, stdout, stderr)
	case "version", "--version":
		fmt.Fprintf(stdout, "rulebook %s\n", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "rulebook: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.As(err, &ee):
		return ee.code
	}
	fmt.Fprintf(stderr, "rulebook %s: %v\n", cmd, err)
	return 1
}

// newFlags returns a flag set whose --help prints the command's synopsis.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: rulebook %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// checkFormat says whether --format is one of the formats a command writes.
func checkFormat(format string, formats ...string) error {
	if slices.Contains(formats, format) {
		return nil
	}
	return fmt.Errorf("--format: want %s, got %q", strings.Join(formats, " or "), format)
}

// parseInterspersed parses flags that may come before or after the
// positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
		if len(args) == 0 {
			return pos, nil
		}
	}
}

// optionalDuration is a duration flag whose default is another setting's
// value: unset, it has no value of its own, so the help shows no
// "(default ...)" and the caller substitutes that setting.
type optionalDuration struct {
	d   time.Duration
	set bool
}

func (o *optionalDuration) String() string {
	if o == nil || !o.set {
		return ""
	}
	return o.d.String()
}

func (o *optionalDuration) Set(v string) error {
	d, err := time.ParseDuration(v)
	if err != nil {
		return err
	}
	if d < 0 {
		return fmt.Errorf("%s is negative", v)
	}
	o.d, o.set = d, true
	return nil
}

// or returns the flag's value if it was set, else def.
func (o *optionalDuration) or(def time.Duration) time.Duration {
	if o.set {
		return o.d
	}
	return def
}

// listFlag collects repeated or comma-separated values.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}
