package durability

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/test/rbtest"
)

// stormRSSBound is the peak resident set (VmHWM) the engine must stay
// under while the storm of TestStormBoundsMemory lasts. With
// --max-backlog-bytes 32 MiB the pending work is bounded, and what is
// left is fixed overhead that does not grow with the storm: Pebble's
// memtables (32 MiB, two while one flushes) and block cache (up to 64
// MiB), the journal's read ring (16 MiB), the bodies being received and
// the Go heap's headroom: measured at 208 to 233 MiB on the 2-core CI
// machine, hence a bound with some margin.
// Before the fix the same storm peaked at 425 MiB and grew with every
// body: all 240 were accepted and every queued invocation held its event
// in memory.
const stormRSSBound = 300 << 20

// TestStormBoundsMemory sends a storm of ~400 KB webhook bodies to a rule
// whose action is slow. The backlog bound in bytes makes senders back off
// (503 with Retry-After) instead of the engine holding every body in
// memory; the engine's peak RSS stays under stormRSSBound, and every
// event that got a 2xx is processed exactly once.
func TestStormBoundsMemory(t *testing.T) {
	dir := t.TempDir()
	port := rbtest.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/hook", port)
	out := dir + "/done.txt"
	rb := dir + "/rb.yml"
	writeFile(t, rb, fmt.Sprintf(`- name: storm
  sources:
    - name: hook
      webhook: {address: "127.0.0.1:%d", path: /hook, max_body_bytes: 1048576}
  rules:
    - name: slow
      condition: event.payload.n >= 0
      action:
        run_command:
          argv: [sh, -c, 'sleep 0.1; echo "$1" >> "$2"', sh, "{{ event.payload.n }}", %q]
          stdin: none
`, port, out))
	data := dir + "/data"
	p := start(t, rb, data, "--max-backlog-bytes", strconv.Itoa(32<<20), "--max-concurrency", "4", "--retry-after", "1s")
	rbtest.WaitHTTP(t, url)

	const total, senders, size = 240, 8, 400 << 10
	pad := strings.Repeat("x", size)
	var mu sync.Mutex
	acked := map[int]bool{}
	refused, noRetryAfter := 0, 0
	next := make(chan int, total)
	for i := 0; i < total; i++ {
		next <- i
	}
	close(next)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < senders; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				body := fmt.Sprintf(`{"n": %d, "pad": %q}`, i, pad)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader([]byte(body)))
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Errorf("post %d: %v", i, err)
					return
				}
				resp.Body.Close()
				mu.Lock()
				switch resp.StatusCode {
				case http.StatusOK:
					acked[i] = true
				case http.StatusServiceUnavailable:
					refused++
					if resp.Header.Get("Retry-After") == "" {
						noRetryAfter++
					}
				default:
					t.Errorf("post %d: status %d", i, resp.StatusCode)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	peakDuringStorm := vmHWM(t, p.Cmd.Process.Pid)
	rbtest.WaitFor(t, 120*time.Second, "every acknowledged event processed", func() bool {
		return countLines(out) >= len(acked)
	})
	p.Stop(t)
	done := map[int]int{}
	for _, l := range strings.Fields(readFile(out)) {
		n, _ := strconv.Atoi(l)
		done[n]++
	}
	for n := range acked {
		if done[n] != 1 {
			t.Errorf("acknowledged event %d processed %d times, want once", n, done[n])
		}
	}
	for n := range done {
		if !acked[n] {
			t.Errorf("event %d processed but never acknowledged", n)
		}
	}
	if refused == 0 {
		t.Errorf("no sender was told to back off: the storm did not exceed the bound")
	}
	if noRetryAfter > 0 {
		t.Errorf("%d of %d 503 answers without Retry-After", noRetryAfter, refused)
	}
	t.Logf("%d acknowledged, %d refused with 503; peak RSS during the storm %d MiB (bound %d MiB)",
		len(acked), refused, peakDuringStorm>>20, stormRSSBound>>20)
	if peakDuringStorm > stormRSSBound {
		t.Errorf("peak RSS %d MiB, over the bound of %d MiB", peakDuringStorm>>20, stormRSSBound>>20)
	}
}

// vmHWM returns the peak resident set size of pid from /proc.
func vmHWM(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read VmHWM: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}
