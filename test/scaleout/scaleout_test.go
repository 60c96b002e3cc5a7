package scaleout

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/test/kafkatest"

	"github.com/rulebook-dev/rulebook/test/rbtest"
)

const (
	topic      = "rulebook-bus"
	partitions = 6
	group      = "scaleout"
	hosts      = 12
)

// The rulebook both processes run. The alertmanager source is the HTTP
// source whose events carry meta.hosts (the instance label), so the bus's
// default partition key (source name and first host) spreads the hosts
// over the partitions. Every firing alert fires "every alert"; "once per
// host" fires once per host within its window, wherever the host's
// partition is processed.
const rulebook = `- name: scaleout
  match_multiple_rules: true
  sources:
    - name: alerts
      alertmanager:
        address: "127.0.0.1:${env:RB_PORT}"
        path: /alerts
  rules:
    - name: every alert
      condition: event.alert.status == "firing"
      action:
        none: {}
    - name: once per host
      condition: event.alert.status == "firing" && len(event.meta.hosts) > 0
      throttle:
        once_within: 10m
        group_by:
          - event.meta.hosts[0]
      action:
        none: {}
`

// member is one rulebook process on the bus.
type member struct {
	*rbtest.Process
	url     string
	dataDir string
}

func startMember(t *testing.T, name, dir, bus, rb string) *member {
	t.Helper()
	port := rbtest.FreePort(t)
	m := &member{url: fmt.Sprintf("http://127.0.0.1:%d/alerts", port), dataDir: filepath.Join(dir, name)}
	m.Process = rbtest.StartWith(t, rbtest.Options{Name: name, Env: []string{fmt.Sprintf("RB_PORT=%d", port)}, Combined: true}, binary,
		"run", rb, "--bus", bus, "--data-dir", m.dataDir, "--log-format", "json", "--log-level", "info")
	m.WaitHTTP(t, m.url)
	return m
}

// owned returns the partitions of the member's latest assignment.
func (m *member) owned() []int {
	lines := m.LogLines("bus partitions assigned")
	if len(lines) == 0 {
		return nil
	}
	var out []int
	ps, _ := lines[len(lines)-1]["partitions"].([]any)
	for _, p := range ps {
		if f, ok := p.(float64); ok {
			out = append(out, int(f))
		}
	}
	return out
}

// notify posts one Alertmanager notification with one firing alert for
// host and returns the ids of the events it became.
func notify(t *testing.T, url, host string, round int, startsAt time.Time) []string {
	t.Helper()
	labels := map[string]string{"alertname": "HostDown", "instance": host + ":9100", "round": fmt.Sprint(round)}
	body, _ := json.Marshal(map[string]any{
		"version": "4", "status": "firing", "receiver": "rulebook",
		"groupKey":    fmt.Sprintf(`{}:{instance=%q}`, host),
		"groupLabels": map[string]string{"instance": host}, "commonLabels": labels, "commonAnnotations": map[string]string{},
		"externalURL": "http://alertmanager.invalid", "truncatedAlerts": 0,
		"alerts": []map[string]any{{
			"status": "firing", "labels": labels, "annotations": map[string]string{},
			"startsAt": startsAt.Format(time.RFC3339Nano), "endsAt": "0001-01-01T00:00:00Z",
		}},
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			var ans struct {
				Status string   `json:"status"`
				IDs    []string `json:"ids"`
			}
			derr := json.NewDecoder(resp.Body).Decode(&ans)
			resp.Body.Close()
			cancel()
			switch {
			case resp.StatusCode == http.StatusOK && derr == nil && len(ans.IDs) == 1:
				return ans.IDs
			case resp.StatusCode == http.StatusServiceUnavailable:
				// The bus asked us to come back, as Alertmanager would.
			default:
				t.Fatalf("post to %s: %d %+v %v", url, resp.StatusCode, ans, derr)
			}
		} else {
			cancel()
		}
		if time.Now().After(deadline) {
			t.Fatalf("post to %s: not accepted within 30s (last error %v)", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitCommitted waits until the group has committed every partition's end:
// every event on the bus was processed and its offset committed.
func waitCommitted(t *testing.T, c *kafkatest.Cluster, alive ...*member) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var end, committed map[int32]int64
	rbtest.WaitFor(t, 90*time.Second, "every offset committed", func() bool {
		for _, m := range alive {
			if m.Exited() {
				t.Fatalf("%s exited: %v", m.Name, m.Err())
			}
		}
		var err error
		if end, err = c.EndOffsets(ctx, topic); err != nil {
			return false
		}
		if committed, err = c.CommittedOffsets(ctx, group, topic); err != nil {
			return false
		}
		for p, e := range end {
			if e > 0 && committed[p] != e {
				return false
			}
		}
		return true
	})
}

// TestKillOneMember runs two members, kills one with SIGKILL at a quiet
// moment, keeps posting to the survivor, and checks both audit trails:
// every acknowledged event fired "every alert" exactly once across the two
// processes, and "once per host" fired once per host although half of the
// hosts moved from one process to the other.
func TestKillOneMember(t *testing.T) {
	requireBusFlag(t)
	dir := t.TempDir()
	rb := filepath.Join(dir, "rulebook.yml")
	if err := os.WriteFile(rb, []byte(rulebook), 0o644); err != nil {
		t.Fatal(err)
	}
	c := kafkatest.Start(t, kafkatest.Options{Brokers: 3, Partitions: partitions, Topics: []string{topic}})
	bus := fmt.Sprintf("kafka://%s/%s?group=%s", c.Bootstrap(), topic, group)

	a := startMember(t, "a", dir, bus, rb)
	b := startMember(t, "b", dir, bus, rb)
	rbtest.WaitFor(t, 60*time.Second, "both members to share the partitions", func() bool {
		oa, ob := a.owned(), b.owned()
		return len(oa) > 0 && len(ob) > 0 && len(oa)+len(ob) == partitions
	})
	ownedByA := a.owned()
	t.Logf("a owns %v, b owns %v", ownedByA, b.owned())

	acked := map[string]string{} // event id -> host
	round := 0
	post := func(ms ...*member) {
		startsAt := time.Now().UTC().Truncate(time.Millisecond)
		for h := range hosts {
			host := fmt.Sprintf("web%02d", h)
			m := ms[(h+round)%len(ms)]
			for _, id := range notify(t, m.url, host, round, startsAt) {
				acked[id] = host
			}
		}
		round++
	}
	// Before the kill: posts to both; the throttle fires once per host.
	for range 3 {
		post(a, b)
	}
	waitCommitted(t, c, a, b)
	a.Kill()

	// After the kill: b takes a's partitions (once the session of a
	// expires) and must replay their history to keep the throttle.
	for range 3 {
		post(b)
	}
	rbtest.WaitFor(t, 90*time.Second, "b to own every partition", func() bool { return len(b.owned()) == partitions })
	post(b)
	waitCommitted(t, c, b)
	b.Stop(t)

	la, lb := rbtest.Audit(t, binary, a.dataDir), rbtest.Audit(t, binary, b.dataDir)
	every := map[string]int{}
	perHost := map[string][]string{}
	byProcess := map[string]map[string]int{"a": {}, "b": {}}
	for name, lines := range map[string][]rbtest.AuditLine{"a": la, "b": lb} {
		for _, l := range lines {
			switch l.Firing.Rule {
			case "every alert":
				for _, id := range l.Firing.EventIDs {
					every[id]++
					byProcess[name][acked[id]]++
				}
			case "once per host":
				for _, id := range l.Firing.EventIDs {
					perHost[acked[id]] = append(perHost[acked[id]], name)
				}
			default:
				t.Errorf("firing of unknown rule %q", l.Firing.Rule)
			}
			for _, inv := range l.Invocations {
				if inv.Status != "succeeded" {
					t.Errorf("invocation %s of %s: %s", inv.Invocation.ID, l.Firing.Rule, inv.Status)
				}
			}
		}
	}
	for id, host := range acked {
		if every[id] != 1 {
			t.Errorf("event %s (host %s) fired %d times, want once", id, host, every[id])
		}
	}
	for id := range every {
		if _, ok := acked[id]; !ok {
			t.Errorf("firing for event %s that was never acknowledged", id)
		}
	}
	if len(perHost) != hosts {
		t.Errorf("%d hosts fired the throttled rule, want %d: %v", len(perHost), hosts, perHost)
	}
	var hostsOfA []string
	for host, procs := range perHost {
		if len(procs) != 1 {
			t.Errorf("host %s: throttled rule fired %d times (%v), want once across the handover", host, len(procs), procs)
		}
		if procs[0] == "a" {
			hostsOfA = append(hostsOfA, host)
		}
	}
	sort.Strings(hostsOfA)
	// The throttle was tested across the handover only if b processed
	// later events of hosts whose first firing was a's.
	moved := 0
	for _, host := range hostsOfA {
		if byProcess["b"][host] > 0 {
			moved++
		}
	}
	if len(ownedByA) > 0 && moved == 0 {
		t.Errorf("no host moved from a to b (a fired for %v, b processed %v): the handover was not exercised", hostsOfA, byProcess["b"])
	}
	t.Logf("%d events, %d hosts; a owned %v and fired for %v; %d of them continued on b", len(acked), len(perHost), ownedByA, hostsOfA, moved)
}
