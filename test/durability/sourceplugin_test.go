package durability

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/test/rbtest"
)

// A source plugin (cmd/rulebook-source-jsonl: a separate module written
// with plugins/sdk) delivers every event exactly once although the engine is killed with -9
// and then the plugin is killed with -9, while events keep coming: the
// host acknowledges an event only once it is durable and stores the
// plugin's position with it, and a restarted plugin resumes from there.
func TestSourcePluginSurvivesKills(t *testing.T) {
	dir := t.TempDir()
	pdir := filepath.Join(dir, "plugins")
	pluginBin := filepath.Join(pdir, "rulebook-source-jsonl")
	// The plugin is its own Go module, as a plugin author's would be: its
	// go.mod requires the SDK with a replace to this checkout.
	build := exec.Command("go", "build", "-o", pluginBin, ".")
	build.Dir = filepath.Join("..", "..", "cmd", "rulebook-source-jsonl")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the plugin: %v\n%s", err, out)
	}
	in := filepath.Join(dir, "in.jsonl")
	writeFile(t, in, "")
	out := filepath.Join(dir, "ran.txt")
	rb := filepath.Join(dir, "rb.yml")
	writeFile(t, rb, fmt.Sprintf(`- name: lines
  sources:
    - name: feed
      jsonl: {path: %q, poll_interval: 20ms}
  rules:
    - name: each line
      condition: event.line.n > 0
      action:
        run_command:
          argv: [sh, -c, 'echo "$1" >> "$2"', sh, "{{ event.line.n }}", %q]
`, in, out))
	data := filepath.Join(dir, "data")
	const total = 240
	var wmu sync.Mutex
	written := 0
	stopWriter := make(chan struct{})
	writerDone := make(chan struct{})
	go func() { // appends one line every 10ms, sometimes in two writes
		defer close(writerDone)
		f, err := os.OpenFile(in, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		for i := 1; i <= total; i++ {
			select {
			case <-stopWriter:
				return
			case <-time.After(10 * time.Millisecond):
			}
			line := fmt.Sprintf("{\"n\": %d, \"pad\": %q}\n", i, strings.Repeat("x", i%7))
			if i%5 == 0 { // a line split across writes: read only once complete
				_, _ = f.WriteString(line[:6])
				time.Sleep(5 * time.Millisecond)
				line = line[6:]
			}
			_, _ = f.WriteString(line)
			wmu.Lock()
			written = i
			wmu.Unlock()
		}
	}()
	t.Cleanup(func() {
		select {
		case <-stopWriter:
		default:
			close(stopWriter)
		}
		<-writerDone
	})
	progress := func() int { return countLines(out) }
	var pids []int
	t.Cleanup(func() { // a plugin orphaned by kill -9 of its engine
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})

	p := start(t, rb, data, "--plugins-dir", pdir)
	rbtest.WaitFor(t, 60*time.Second, "40 events", func() bool { return progress() >= 40 })
	orphan := 0
	rbtest.WaitFor(t, 10*time.Second, "the plugin process", func() bool { orphan = childPID(t, p.Cmd.Process.Pid, pluginBin); return orphan > 0 })
	pids = append(pids, orphan)
	p.Kill() // kill -9 of the engine, mid-stream
	rbtest.WaitFor(t, 15*time.Second, "the orphaned plugin to exit", func() bool { return !running(orphan) })

	admin := rbtest.FreeAddr(t)
	p = start(t, rb, data, "--plugins-dir", pdir, "--admin", admin)
	before := progress()
	rbtest.WaitFor(t, 60*time.Second, "40 more events", func() bool { return progress() >= before+40 })
	plugin := 0
	rbtest.WaitFor(t, 10*time.Second, "the plugin process", func() bool { plugin = childPID(t, p.Cmd.Process.Pid, pluginBin); return plugin > 0 })
	pids = append(pids, plugin)
	if err := syscall.Kill(plugin, syscall.SIGKILL); err != nil { // kill -9 of the plugin
		t.Fatal(err)
	}
	rbtest.WaitFor(t, 30*time.Second, "the plugin restarted", func() bool {
		pid := childPID(t, p.Cmd.Process.Pid, pluginBin)
		return pid > 0 && pid != plugin
	})
	// The restart is counted.
	rbtest.WaitFor(t, 30*time.Second, "the restart in /metrics", func() bool {
		resp, err := http.Get("http://" + admin + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), `rulebook_plugin_restarts_total{plugin="jsonl"} 1`)
	})
	<-writerDone
	rbtest.WaitFor(t, 60*time.Second, "every event", func() bool {
		got := map[string]bool{}
		b, _ := os.ReadFile(out)
		for _, l := range strings.Fields(string(b)) {
			got[l] = true
		}
		return len(got) >= total
	})
	p.Stop(t)
	wmu.Lock()
	if written != total {
		t.Fatalf("the writer wrote %d lines", written)
	}
	wmu.Unlock()
	if lines := p.LogLines("source plugin failed: restarting"); len(lines) == 0 || lines[0]["plugin"] != "jsonl" {
		t.Errorf("no restart logged with the plugin's name: %v", lines)
	}

	// The journal holds each line once: one firing per line.
	count := map[string]int{}
	for _, l := range rbtest.Audit(t, binary, data) {
		for _, inv := range l.Invocations {
			argv, _ := inv.Invocation.Args["argv"].([]any)
			if len(argv) > 4 {
				count[fmt.Sprint(argv[4])]++
			}
		}
	}
	var missing, twice []string
	for i := 1; i <= total; i++ {
		switch n := count[strconv.Itoa(i)]; {
		case n == 0:
			missing = append(missing, strconv.Itoa(i))
		case n > 1:
			twice = append(twice, strconv.Itoa(i))
		}
	}
	if len(missing) > 0 || len(twice) > 0 || len(count) != total {
		t.Fatalf("events missing: %v; more than once: %v (%d distinct)", missing, twice, len(count))
	}
}

// childPID returns the pid of the child process of parent that runs the
// executable exe (the plugin the engine started), or 0.
func childPID(t *testing.T, parent int, exe string) int {
	t.Helper()
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", parent))
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", parent, task.Name()))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				continue
			}
			if path, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && path == exe {
				return pid
			}
		}
	}
	return 0
}

// running reports whether pid is a live process (not gone, not a zombie).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z' && b[i+2] != 'X'
}
