package procgroup

import (
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"testing"
)

// benchRun runs /bin/true b.N times in a row, as run_command does (the
// event on stdin, one writer for stdout and stderr), through run.
func benchRun(b *testing.B, run func(cmd *exec.Cmd, id string) Outcome) {
	ctx := context.Background()
	event := []byte(`{"payload":{"id":"x"},"meta":{"uuid":"54fdbe50-010c-4f75-a2f5-d196fa332f13"}}` + "\n")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		cmd := exec.CommandContext(ctx, "/bin/true")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.Stdin = bytes.NewReader(event)
		if o := run(cmd, "inv-"+strconv.Itoa(i)); o.ExitCode != 0 {
			b.Fatalf("outcome %+v", o)
		}
	}
}

// BenchmarkDirectRun is the floor: Run, no supervisor.
func BenchmarkDirectRun(b *testing.B) {
	benchRun(b, func(cmd *exec.Cmd, _ string) Outcome { return Run(context.Background(), cmd, 0) })
}

// BenchmarkSupervisedRun runs through the supervisor daemon, releasing
// each attempt's records as the dispatcher does.
func BenchmarkSupervisedRun(b *testing.B) {
	s := Supervisor{Dir: b.TempDir()}
	b.Cleanup(func() { closeDaemon(s) })
	benchRun(b, func(cmd *exec.Cmd, id string) Outcome {
		o := s.Run(context.Background(), cmd, 0, id, "")
		s.Release(id)
		return o
	})
}
