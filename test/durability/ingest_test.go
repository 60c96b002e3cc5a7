package durability

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/test/rbtest"
)

// TestKillDuringIngest sends deliveries concurrently, kills rulebook with
// SIGKILL mid-stream, restarts it, lets the senders retry what got no 2xx
// (as real providers do) and resend some that did, and checks the audit:
// every event that got a 2xx was processed exactly once, and no delivery id
// was processed twice.
func TestKillDuringIngest(t *testing.T) {
	dir := t.TempDir()
	port := rbtest.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/hook", port)
	rb := dir + "/rb.yml"
	writeFile(t, rb, fmt.Sprintf(`- name: ingest
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
        none: {}
`, port))
	data := dir + "/data"
	p := start(t, rb, data)
	rbtest.WaitHTTP(t, url)

	const total = 400
	var mu sync.Mutex
	acked := map[int][]string{} // delivery -> event ids answered with 2xx
	send := func(ctx context.Context, i int) bool {
		code, ids, err := post(ctx, url, fmt.Sprintf("d-%d", i), fmt.Sprintf(`{"n": %d}`, i))
		if err != nil || code/100 != 2 {
			return false
		}
		mu.Lock()
		acked[i] = append(acked[i], ids...)
		mu.Unlock()
		return true
	}

	// Phase 1: eight senders; the process is killed once ~150 are acked.
	next := make(chan int, total)
	for i := 0; i < total; i++ {
		next <- i
	}
	close(next)
	var failed []int
	var fmu sync.Mutex
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if !send(ctx, i) {
					fmu.Lock()
					failed = append(failed, i)
					fmu.Unlock()
				}
			}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 150 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.Kill()
	wg.Wait()
	mu.Lock()
	ackedBeforeKill := len(acked)
	mu.Unlock()
	if ackedBeforeKill < 150 || len(failed) == 0 {
		t.Fatalf("the kill did not land mid-stream: %d acked, %d failed", ackedBeforeKill, len(failed))
	}

	// Phase 2: restart; retry what failed, and resend some acked ones.
	p = start(t, rb, data)
	rbtest.WaitHTTP(t, url)
	for _, i := range failed {
		if !send(context.Background(), i) {
			t.Fatalf("retry of delivery %d failed after restart", i)
		}
	}
	for i := 0; i < 20; i++ {
		if !send(context.Background(), i) {
			t.Fatalf("resend of delivery %d failed", i)
		}
	}
	p.Stop(t)

	seen := map[string]int{}
	for _, l := range rbtest.Audit(t, binary, data) {
		for _, id := range l.Firing.EventIDs {
			seen[id]++
		}
	}
	processed := 0
	for i := 0; i < total; i++ {
		ids := acked[i]
		if len(ids) == 0 {
			// Acknowledged only as a duplicate: its first delivery got no
			// answer (killed) but was stored; it must have been processed.
			continue
		}
		for _, id := range ids {
			if seen[id] != 1 {
				t.Errorf("delivery %d (event %s) got a 2xx and fired %d times", i, id, seen[id])
			}
		}
		if len(ids) > 1 {
			t.Errorf("delivery %d was accepted %d times; duplicates must be dropped", i, len(ids))
		}
		processed++
	}
	// Every delivery was processed exactly once overall.
	if len(seen) != total {
		t.Errorf("%d events fired for %d deliveries", len(seen), total)
	}
	t.Logf("%d acked before the kill, %d retried after it, %d processed with a known id", ackedBeforeKill, len(failed), processed)
}
