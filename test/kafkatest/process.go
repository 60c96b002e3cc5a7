package kafkatest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is a kfake process (test/kafkatest/cmd/kfake) serving a Cluster.
type proc struct {
	bin, dir string
	cmd      *exec.Cmd
	done     chan struct{}
	err      error
	out      *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// StartProcess runs the cluster as a separate process built from
// test/kafkatest/cmd/kfake, so the broker neither shares the test's CPU
// accounting nor slows down under the race detector, and a process under
// test sees a broker as it would in production. It is stopped at the test's
// end. Produce, Kcat*, Group, offsets and Restart (with Persist) work as for
// Start; Kfake, StopBroker, StartBroker, ShuffleLeaders and
// FailOffsetCommits need the in-process cluster of Start. TLS and SASL are
// not available here.
func StartProcess(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.TLS != nil || opts.SASL != nil {
		t.Fatal("kafkatest: StartProcess does not support TLS or SASL; use Start")
	}
	if opts.Persist && opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	if opts.Brokers <= 0 {
		opts.Brokers = 3
	}
	if len(opts.Ports) > 0 {
		opts.Brokers = len(opts.Ports)
	}
	if opts.Partitions <= 0 {
		opts.Partitions = 3
	}
	if opts.MinSessionTimeout <= 0 {
		opts.MinSessionTimeout = 100 * time.Millisecond
	}
	if opts.DataDir != "" {
		opts.Persist = true
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "kfake")
	build := exec.Command("go", "build", "-o", bin, "github.com/rulebook-dev/rulebook/test/kafkatest/cmd/kfake")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("kafkatest: go build kfake: %v\n%s", err, out)
	}
	ports := opts.Ports
	if len(ports) == 0 {
		var err error
		if ports, err = FreePorts(opts.Brokers); err != nil {
			t.Fatal(err)
		}
	}
	c := &Cluster{opts: opts, ports: append([]int(nil), ports...), stopped: map[int32]int{}}
	c.proc = &proc{bin: bin, dir: dir}
	if err := c.startProc(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func (c *Cluster) startProc() error {
	p := c.proc
	addrFile := filepath.Join(p.dir, "addrs")
	os.Remove(addrFile)
	portList := make([]string, len(c.ports))
	for i, port := range c.ports {
		portList[i] = strconv.Itoa(port)
	}
	args := []string{
		"--ports", strings.Join(portList, ","),
		"--partitions", strconv.Itoa(c.opts.Partitions),
		"--min-session-timeout", c.opts.MinSessionTimeout.String(),
		"--addr-file", addrFile,
	}
	if len(c.opts.Topics) > 0 {
		args = append(args, "--topics", strings.Join(c.opts.Topics, ","))
	}
	if c.opts.AutoCreateTopics {
		args = append(args, "--auto-create-topics")
	}
	if c.opts.DataDir != "" {
		args = append(args, "--data-dir", c.opts.DataDir)
	}
	p.out = &lockedBuffer{}
	p.cmd = exec.Command(p.bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("kafkatest: start kfake: %w", err)
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		p.err = cmd.Wait()
		close(done)
	}(p.cmd, p.done)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if b, err := os.ReadFile(addrFile); err == nil {
			c.addrs = strings.Split(strings.TrimSpace(string(b)), ",")
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("kafkatest: kfake exited before it was ready: %v\n%s", p.err, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kafkatest: kfake not ready within 20s:\n%s", p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopProc asks the kfake process to stop (SIGTERM, so it persists its
// state) and waits for it, killing it after 10s.
func (c *Cluster) stopProc() error {
	p := c.proc
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return errors.New("kafkatest: kfake did not stop within 10s of SIGTERM; killed")
	}
	return nil
}
