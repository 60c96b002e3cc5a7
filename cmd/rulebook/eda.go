package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/rulebook-dev/rulebook/actions/awx"
	"github.com/rulebook-dev/rulebook/engine"
	pysource "github.com/rulebook-dev/rulebook/sources/python"
)

// addSourceDirFlags adds ansible-rulebook's --source-dir (-S): where a
// source that is not built in is looked up as NAME.py.
func addSourceDirFlags(fs *flag.FlagSet) *[]string {
	l := &listFlag{}
	usage := "`DIR` of Event-Driven Ansible Python source plugins: a source NAME that is not built in runs DIR/NAME.py with python3 (repeatable); ns.coll.NAME is looked up in the Ansible collections paths"
	fs.Var(l, "source-dir", usage)
	fs.Var(l, "S", "short for --source-dir `DIR`")
	return (*[]string)(l)
}

// controllerFlags are ansible-rulebook's controller flags, for
// run_job_template and run_workflow_template.
type controllerFlags struct {
	url, token, sslVerify string
	username, password    string
}

func addControllerFlags(fs *flag.FlagSet) *controllerFlags {
	c := &controllerFlags{}
	fs.StringVar(&c.url, "controller-url", "", "AWX / Automation Platform controller `URL` for run_job_template and run_workflow_template (also EDA_CONTROLLER_URL)")
	fs.StringVar(&c.token, "controller-token", "", "the controller's OAuth2 token (also EDA_CONTROLLER_TOKEN; ${env:..}/${file:..} allowed, better than a token on the command line)")
	fs.StringVar(&c.sslVerify, "controller-ssl-verify", "", "check the controller's certificate: yes, no, or a CA file (also EDA_CONTROLLER_SSL_VERIFY; default yes)")
	fs.StringVar(&c.username, "controller-username", "", "the controller's user, with --controller-password, when there is no token (also EDA_CONTROLLER_USERNAME)")
	fs.StringVar(&c.password, "controller-password", "", "that user's password (also EDA_CONTROLLER_PASSWORD; ${env:..}/${file:..} allowed)")
	return c
}

// controller reads the flags, else EDA's environment variables. The token
// is resolved here and goes nowhere but the Authorization header.
func (c *controllerFlags) controller(getenv func(string) string) (awx.Controller, error) {
	pick := func(flagValue, env string) string {
		if flagValue != "" {
			return flagValue
		}
		return getenv(env)
	}
	out := awx.Controller{
		URL:       pick(c.url, "EDA_CONTROLLER_URL"),
		SSLVerify: pick(c.sslVerify, "EDA_CONTROLLER_SSL_VERIFY"),
	}
	if v := getenv("EDA_JOB_TEMPLATE_REFRESH_DELAY"); v != "" {
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil || secs <= 0 {
			return out, fmt.Errorf("EDA_JOB_TEMPLATE_REFRESH_DELAY: want seconds > 0, got %q", v)
		}
		out.PollInterval = time.Duration(secs * float64(time.Second))
	}
	out.Username = pick(c.username, "EDA_CONTROLLER_USERNAME")
	if pw := pick(c.password, "EDA_CONTROLLER_PASSWORD"); pw != "" {
		resolved, err := engine.ResolveSecretString(pw, nil)
		if err != nil {
			return out, fmt.Errorf("--controller-password: %w", err)
		}
		out.Password = resolved
	}
	if tok := pick(c.token, "EDA_CONTROLLER_TOKEN"); tok != "" {
		resolved, err := engine.ResolveSecretString(tok, nil)
		if err != nil {
			return out, fmt.Errorf("--controller-token: %w", err)
		}
		out.Token = resolved
	}
	return out, nil
}

// absDirs makes --source-dir values absolute against the working
// directory, as ansible-rulebook reads them.
func absDirs(dirs []string) []string {
	out := make([]string, 0, len(dirs))
	for _, d := range dirs {
		if a, err := filepath.Abs(d); err == nil {
			d = a
		}
		out = append(out, d)
	}
	return out
}

// registerEDA wires EDA's Python source plugins and the controller
// actions into reg.
func registerEDA(reg *engine.Registry, opts registryOptions) {
	finder := &pysource.Finder{
		SourceDirs:      absDirs(opts.sourceDirs),
		CollectionPaths: pysource.CollectionPaths(os.Getenv),
		Python:          os.Getenv("RULEBOOK_PYTHON"),
		Galaxy:          "ansible-galaxy",
	}
	reg.SetSourceResolver(finder.Resolve)
	reg.RegisterAction(withNewError(awx.JobTemplateSpec(opts.controller), opts.controllerErr))
	reg.RegisterAction(withNewError(awx.WorkflowTemplateSpec(opts.controller), opts.controllerErr))
}

// withNewError makes the action fail to build with err (a controller
// token that does not resolve), so that only a rulebook that uses it
// stops on it.
func withNewError(a engine.ActionSpec, err error) engine.ActionSpec {
	if err == nil {
		return a
	}
	a.New = func(engine.ActionEnv) (engine.Action, error) { return nil, err }
	return a
}
