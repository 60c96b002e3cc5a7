// Package scaleout tests `rulebook run --bus` against the real binary: two
// processes share a Kafka bus (an in-process kfake cluster the binaries
// reach over 127.0.0.1), one is killed with SIGKILL, the other takes its
// partitions; the audit trails of both show every acknowledged event
// processed once and a per-host throttle that held across the handover.
package scaleout

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/rulebook-dev/rulebook/test/rbtest"
)

var binary string

func TestMain(m *testing.M) { os.Exit(rbtest.Main(m, "rulebook-scaleout", &binary)) }

// requireBusFlag skips (outside CI) or fails (under CI) when the binary has
// no --bus flag.
func requireBusFlag(t *testing.T) {
	t.Helper()
	out, _ := exec.Command(binary, "run", "--help").CombinedOutput()
	if strings.Contains(string(out), "-bus") {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("rulebook run has no --bus flag:\n%s", out)
	}
	t.Skip("rulebook run has no --bus flag yet")
}
