package scaleout

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/test/kafkatest"

	"github.com/rulebook-dev/rulebook/test/rbtest"
)

// TestBusOutage restarts every broker while events are posted: during the
// outage the source answers 503 with Retry-After (nothing is acknowledged
// that is not on the bus), and after it every acknowledged event is
// processed exactly once.
func TestBusOutage(t *testing.T) {
	requireBusFlag(t)
	dir := t.TempDir()
	rb := filepath.Join(dir, "rulebook.yml")
	if err := os.WriteFile(rb, []byte(rulebook), 0o644); err != nil {
		t.Fatal(err)
	}
	c := kafkatest.Start(t, kafkatest.Options{Brokers: 3, Partitions: partitions, Topics: []string{topic}, Persist: true})
	bus := fmt.Sprintf("kafka://%s/%s?group=%s", c.Bootstrap(), topic, group)
	m := startMember(t, "only", dir, bus, rb)
	rbtest.WaitFor(t, 60*time.Second, "the member to own every partition", func() bool { return len(m.owned()) == partitions })

	acked := map[string]bool{}
	unavailable, retryAfter := 0, ""
	post := func(n int) {
		labels := map[string]string{"alertname": "HostDown", "instance": fmt.Sprintf("web%02d:9100", n%hosts), "n": fmt.Sprint(n)}
		body, _ := json.Marshal(map[string]any{
			"version": "4", "status": "firing", "receiver": "rulebook", "groupKey": fmt.Sprintf("{}:{n=%d}", n),
			"alerts": []map[string]any{{"status": "firing", "labels": labels, "startsAt": time.Now().UTC().Format(time.RFC3339Nano)}},
		})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, m.url, strings.NewReader(string(body)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("post %d: %v", n, err)
		}
		defer resp.Body.Close()
		var ans struct {
			IDs []string `json:"ids"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&ans)
		switch resp.StatusCode {
		case http.StatusOK:
			for _, id := range ans.IDs {
				acked[id] = true
			}
		case http.StatusServiceUnavailable:
			unavailable++
			retryAfter = resp.Header.Get("Retry-After")
		default:
			t.Fatalf("post %d: status %d", n, resp.StatusCode)
		}
	}
	n := 0
	for ; n < 20; n++ {
		post(n)
	}
	restarted := make(chan error, 1)
	go func() { restarted <- c.Restart(3 * time.Second) }()
	// Post through the outage until the brokers are back and a post was
	// refused during it.
	deadline := time.Now().Add(60 * time.Second)
	for back := false; !back || unavailable == 0; n++ {
		if time.Now().After(deadline) {
			t.Fatalf("no 503 during the outage after %d posts", n)
		}
		select {
		case err := <-restarted:
			if err != nil {
				t.Fatal(err)
			}
			back = true
		default:
		}
		post(n)
		time.Sleep(20 * time.Millisecond)
	}
	if retryAfter == "" {
		t.Error("503 without Retry-After")
	}
	for end := n + 20; n < end; n++ {
		post(n)
	}
	waitCommitted(t, c, m)
	m.Stop(t)

	every := map[string]int{}
	for _, l := range rbtest.Audit(t, binary, m.dataDir) {
		if l.Firing.Rule == "every alert" {
			for _, id := range l.Firing.EventIDs {
				every[id]++
			}
		}
	}
	for id := range acked {
		if every[id] != 1 {
			t.Errorf("acknowledged event %s fired %d times, want once", id, every[id])
		}
	}
	for id := range every {
		if !acked[id] {
			t.Errorf("event %s fired but was never acknowledged", id)
		}
	}
	t.Logf("%d posts, %d acknowledged, %d answered 503 (Retry-After %q)", n, len(acked), unavailable, retryAfter)
}
