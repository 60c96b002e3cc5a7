package durability

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/test/rbtest"
)

const opsRulebook = `- name: ops
  sources:
    - name: hook
      webhook:
        address: 127.0.0.1:%d
        path: /hook
        dedupe: {header: X-Delivery}
  rules:
    - name: count
      condition: event.payload.n >= 0
      action:
        debug: {msg: "%s {{ event.payload.n }}"}
`

// load sends deliveries from several goroutines until stop is closed and
// returns every delivery's event ids that got a 2xx and the statuses seen.
type loadResult struct {
	mu       sync.Mutex
	acked    map[string]string // event id -> delivery
	statuses map[int]int
}

func sendLoad(url string, stop <-chan struct{}, workers int, prefix string) (*loadResult, *sync.WaitGroup) {
	res := &loadResult{acked: map[string]string{}, statuses: map[int]int{}}
	var wg sync.WaitGroup
	var n atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := n.Add(1)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				code, ids, err := post(ctx, url, fmt.Sprintf("%s-%d", prefix, i), fmt.Sprintf(`{"n": %d}`, i))
				cancel()
				res.mu.Lock()
				if err != nil {
					res.statuses[0]++
				} else {
					res.statuses[code]++
					if code/100 == 2 {
						for _, id := range ids {
							res.acked[id] = fmt.Sprint(i)
						}
					}
				}
				res.mu.Unlock()
				if err != nil {
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
	}
	return res, &wg
}

func firedCounts(t *testing.T, data string) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for _, l := range rbtest.Audit(t, binary, data) {
		for _, id := range l.Firing.EventIDs {
			seen[id]++
		}
	}
	return seen
}

func waitLog(t *testing.T, p *rbtest.Process, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.Log(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q:\n%s", want, p.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReloadUnderLoad reloads the rulebook (valid, then invalid) with SIGHUP
// while deliveries keep coming: every event that got a 2xx fires exactly
// once, the valid reload takes effect, the invalid one changes nothing.
func TestReloadUnderLoad(t *testing.T) {
	dir := t.TempDir()
	port := rbtest.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/hook", port)
	rb := dir + "/rb.yml"
	writeFile(t, rb, fmt.Sprintf(opsRulebook, port, "v1"))
	data := dir + "/data"
	p := start(t, rb, data)
	rbtest.WaitHTTP(t, url)

	stop := make(chan struct{})
	res, wg := sendLoad(url, stop, 6, "r")
	time.Sleep(300 * time.Millisecond) // let load build up; correctness does not depend on it
	writeFile(t, rb, fmt.Sprintf(opsRulebook, port, "v2"))
	p.Cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, p, "rulebook reloaded")
	time.Sleep(300 * time.Millisecond)
	writeFile(t, rb, fmt.Sprintf(opsRulebook, port, "v3")+"      bogus: key\n")
	p.Cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, p, "reload rejected")
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	p.Stop(t)

	if !strings.Contains(p.Log(), `unknown key \"bogus\"`) {
		t.Errorf("the invalid reload's error was not logged with its position:\n%s", p.Log())
	}
	seen := firedCounts(t, data)
	res.mu.Lock()
	defer res.mu.Unlock()
	if len(res.acked) < 50 {
		t.Fatalf("only %d events acked; the load did not run (%v)", len(res.acked), res.statuses)
	}
	for id := range res.acked {
		if seen[id] != 1 {
			t.Errorf("event %s got a 2xx and fired %d times", id, seen[id])
		}
	}
	if len(seen) != len(res.acked) {
		t.Errorf("%d events fired, %d acked", len(seen), len(res.acked))
	}
	// The valid reload took effect and the invalid one did not replace it.
	printed := p.Stdout()
	if !strings.Contains(printed, "v1 ") || !strings.Contains(printed, "v2 ") || strings.Contains(printed, "v3 ") {
		t.Errorf("want firings rendered by v1 then v2 and none by the rejected v3; got v1:%v v2:%v v3:%v",
			strings.Contains(printed, "v1 "), strings.Contains(printed, "v2 "), strings.Contains(printed, "v3 "))
	}
	t.Logf("%d events acked and fired once across two reloads; statuses %v", len(res.acked), res.statuses)
}

// TestShutdownUnderLoad sends SIGTERM while deliveries keep coming: the
// process answers 503 (or stops listening) instead of accepting what it
// cannot process, and every event that got a 2xx was processed before exit.
func TestShutdownUnderLoad(t *testing.T) {
	dir := t.TempDir()
	port := rbtest.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/hook", port)
	rb := dir + "/rb.yml"
	writeFile(t, rb, fmt.Sprintf(opsRulebook, port, "v1"))
	data := dir + "/data"
	p := start(t, rb, data)
	rbtest.WaitHTTP(t, url)
	stop := make(chan struct{})
	res, wg := sendLoad(url, stop, 6, "s")
	time.Sleep(300 * time.Millisecond)
	p.Stop(t) // SIGTERM under load; waits for a clean exit
	close(stop)
	wg.Wait()

	seen := firedCounts(t, data)
	res.mu.Lock()
	defer res.mu.Unlock()
	if len(res.acked) < 50 {
		t.Fatalf("only %d events acked; the load did not run (%v)", len(res.acked), res.statuses)
	}
	for id := range res.acked {
		if seen[id] != 1 {
			t.Errorf("event %s got a 2xx and fired %d times before exit", id, seen[id])
		}
	}
	if res.statuses[0] == 0 && res.statuses[503] == 0 {
		t.Errorf("no request was refused after SIGTERM: %v", res.statuses)
	}
	t.Logf("%d acked and processed before exit; statuses %v", len(res.acked), res.statuses)
}
