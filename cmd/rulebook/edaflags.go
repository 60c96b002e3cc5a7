package main

import (
	"encoding/json"
	"flag"
	"fmt"

	"github.com/rulebook-dev/rulebook/engine"
)

// edaRunFlags are ansible-rulebook's flags that `rulebook run` accepts, so
// a command line written for it works: --rulebook/-r, --inventory/-i,
// --print-events, -v/-vv (--vars and --env-vars are the run's own).
type edaRunFlags struct {
	rulebookPath string
	inventory    string
	printEvents  bool
	verbose      bool
	veryVerbose  bool
}

func (f *edaRunFlags) add(fs *flag.FlagSet) {
	for _, name := range []string{"rulebook", "r"} {
		fs.StringVar(&f.rulebookPath, name, "", "the rulebook `FILE` (as ansible-rulebook takes it; or give it as the argument)")
	}
	for _, name := range []string{"inventory", "i"} {
		fs.StringVar(&f.inventory, name, "", "Ansible inventory `FILE` for run_playbook and run_module actions that name none")
	}
	fs.BoolVar(&f.printEvents, "print-events", false, "print each event on stdout as the rules see it")
	for _, name := range []string{"verbose", "v"} {
		fs.BoolVar(&f.verbose, name, false, "log at info level (the default)")
	}
	fs.BoolVar(&f.veryVerbose, "vv", false, "log at debug level (as --log-level debug)")
}

// rulebook merges --rulebook with the positional arguments.
func (f *edaRunFlags) rulebook(files []string) ([]string, error) {
	if f.rulebookPath == "" {
		return files, nil
	}
	if len(files) > 0 && !(len(files) == 1 && files[0] == f.rulebookPath) {
		return nil, fmt.Errorf("give the rulebook once: --rulebook %q or the argument %q", f.rulebookPath, files[0])
	}
	return []string{f.rulebookPath}, nil
}

// level applies -v/-vv to the --log-level value.
func (f *edaRunFlags) level(logLevel string) string {
	if f.veryVerbose {
		return "debug"
	}
	return logLevel
}

// printEvent writes one processed event as a JSON line (--print-events).
func (a *app) printEvent(rec engine.Record) {
	b, err := json.Marshal(rec.Event)
	if err != nil {
		return
	}
	fmt.Fprintln(a.stdout, string(b))
}
