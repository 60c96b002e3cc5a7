package supervise_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rulebook-dev/rulebook/actions/internal/procgroup"
)

// cmd/rulebook-supervise supervises a program as the engine's own binary
// does: the program runs under it, its stdin, output and exit status go
// through, and Release frees its record.
func TestDedicatedSupervisor(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("go toolchain not found:", err) // never skip under CI
		}
		t.Skip("go toolchain not found:", err)
	}
	bin := filepath.Join(t.TempDir(), procgroup.SupervisorName)
	build := exec.Command(gobin, "build", "-o", bin, "github.com/rulebook-dev/rulebook/cmd/rulebook-supervise")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	s := procgroup.Supervisor{Dir: t.TempDir(), Program: bin}
	ctx := context.Background()
	cmd := exec.CommandContext(ctx, "sh", "-c", `readlink /proc/$PPID/exe; cat; exit 3`)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Stdin = strings.NewReader("the event\n")
	o := s.Run(ctx, cmd, 0, "inv/1", "")
	if o.ExitCode != 3 || o.Signaled || o.StartErr != nil {
		t.Errorf("outcome = %+v, want exit 3", o)
	}
	if want := bin + "\nthe event\n"; out.String() != want {
		t.Errorf("output = %q, want %q (the program's parent is the dedicated supervisor)", out.String(), want)
	}
	if left, _ := os.ReadDir(s.Dir); len(left) != 1 {
		t.Errorf("records after Run: %v, want one", left)
	}
	s.Release("inv/1")
	// The record's slot stays, free, for the next attempt.
	left, _ := os.ReadDir(s.Dir)
	if len(left) != 1 {
		t.Fatalf("files after Release: %v, want the free slot", left)
	}
	if b, err := os.ReadFile(filepath.Join(s.Dir, left[0].Name())); err != nil || !bytes.HasPrefix(b, []byte(`{"free":true}`)) {
		t.Errorf("slot after Release: %.80q, %v; want it free", b, err)
	}
}
