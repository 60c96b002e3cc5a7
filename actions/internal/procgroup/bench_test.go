package procgroup

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
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

// BenchmarkDirectRun is the floor: Run, no supervisor. cpu-us/op is the
// CPU of this process and of the programs.
func BenchmarkDirectRun(b *testing.B) {
	before := rusageCPU(syscall.RUSAGE_SELF) + rusageCPU(syscall.RUSAGE_CHILDREN)
	benchRun(b, func(cmd *exec.Cmd, _ string) Outcome { return Run(context.Background(), cmd, 0) })
	after := rusageCPU(syscall.RUSAGE_SELF) + rusageCPU(syscall.RUSAGE_CHILDREN)
	b.ReportMetric(float64((after-before).Microseconds())/float64(b.N), "cpu-us/op")
}

// BenchmarkSupervisedRun runs through the supervisor daemon, releasing
// each attempt's records as the dispatcher does. cpu-us/op is the CPU of
// this process, of the daemon and of the programs; daemon-cpu-us/op the
// daemon's own.
func BenchmarkSupervisedRun(b *testing.B) {
	s := Supervisor{Dir: b.TempDir()}
	b.Cleanup(func() { closeDaemon(s) })
	// Start the daemon first, so that its start is not measured.
	if o := s.Run(context.Background(), exec.Command("/bin/true"), 0, "warm", ""); o.ExitCode != 0 {
		b.Fatalf("outcome %+v", o)
	}
	s.Release("warm")
	c, err := getClient(s.Dir, s.program())
	if err != nil {
		b.Fatal(err)
	}
	daemon := c.proc.Process.Pid
	before := rusageCPU(syscall.RUSAGE_SELF) + procCPU(b, daemon, true)
	daemonBefore := procCPU(b, daemon, false)
	benchRun(b, func(cmd *exec.Cmd, id string) Outcome {
		o := s.Run(context.Background(), cmd, 0, id, "")
		s.Release(id)
		return o
	})
	after := rusageCPU(syscall.RUSAGE_SELF) + procCPU(b, daemon, true)
	b.ReportMetric(float64((after-before).Microseconds())/float64(b.N), "cpu-us/op")
	b.ReportMetric(float64((procCPU(b, daemon, false)-daemonBefore).Microseconds())/float64(b.N), "daemon-cpu-us/op")
}

func rusageCPU(who int) time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(who, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is the CPU time of pid and, with children, of the children it
// reaped, from /proc/PID/stat (fields 14 to 17, in clock ticks of 10 ms).
func procCPU(b *testing.B, pid int, children bool) time.Duration {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	var ticks int64
	fields := f[11:13] // utime, stime
	if children {
		fields = f[11:15] // and cutime, cstime
	}
	for _, s := range fields {
		n, _ := strconv.ParseInt(s, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}
