// Package supervise links the supervisor of supervised actions
// (run_command, run_playbook, run_module) into a binary. Any binary that
// links those actions can act as the supervisor (the engine executes
// itself again as "rulebook-supervise"); cmd/rulebook-supervise links only
// this package, so that starting the supervisor, once per command, costs
// the start of a small program instead of the whole engine's.
package supervise

import (
	"os"

	"github.com/rulebook-dev/rulebook/actions/internal/procgroup"
)

// Main runs the supervisor with os.Args and returns its exit status. A
// binary that links this package already ran it, from the package's
// initialisation, when started as the engine starts a supervisor; Main
// runs it for any other argv[0].
func Main() int {
	return procgroup.SuperviseMain(os.Args[1:])
}
