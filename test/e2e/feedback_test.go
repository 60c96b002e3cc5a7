package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/test/rbtest"
)

const feedbackPlaybook = `- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.set_stats:
        data:
          restarted: "{{ ansible_eda.event.payload.host }}"
`

const feedbackRulebook = `- name: feedback
  sources:
    - name: hook
      webhook: {address: "127.0.0.1:%[1]d", path: /hook}
  rules:
    - name: restart it
      condition: event.payload.kind == "restart"
      action:
        run_playbook:
          name: %[2]s
          inventory: "localhost,"
          limit: localhost
          connection: local
          set_facts: true
    - name: restarted host checked
      condition:
        all:
          - fact.restarted == "web1"
          - event.payload.kind == "check"
      action:
        run_command:
          argv: [sh, -c, 'echo checked >> "$1"', sh, %[3]q]
`

// A playbook's set_stats, fed back as a fact, is journaled: it survives a
// restart of the engine (rebuilt with the rest of rule state), so a rule
// joining that fact with a later event still fires.
func TestPlaybookFeedbackSurvivesRestart(t *testing.T) {
	need(t, "ansible-playbook")
	dir := t.TempDir()
	pb := filepath.Join(dir, "restart.yml")
	writeFile(t, pb, feedbackPlaybook)
	out := filepath.Join(dir, "checked.txt")
	port := rbtest.FreePort(t)
	adminAddr := rbtest.FreeAddr(t)
	hook := fmt.Sprintf("http://127.0.0.1:%d/hook", port)
	rb := fmt.Sprintf(feedbackRulebook, port, pb, out)
	o := engineOptions{args: []string{"--admin", adminAddr}}

	facts := func() []map[string]any {
		resp, err := http.Get("http://" + adminAddr + "/api/facts?ruleset=feedback")
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		var body struct {
			Facts map[string][]map[string]any `json:"facts"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return body.Facts["feedback"]
	}
	hasFact := func() bool {
		for _, f := range facts() {
			if f["restarted"] == "web1" {
				return true
			}
		}
		return false
	}

	e := startRulebook(t, dir, rb, o)
	e.waitListening(t, fmt.Sprintf("127.0.0.1:%d", port), 30*time.Second)
	if code := postJSON(t, hook, []byte(`{"kind": "restart", "host": "web1"}`)); code != 200 {
		t.Fatalf("restart event: %d", code)
	}
	waitFor(t, "the playbook's fact", 120*time.Second, hasFact)
	e.stop(t, 60*time.Second)

	e = startRulebook(t, dir, rb, o)
	defer e.stop(t, 60*time.Second)
	e.waitListening(t, fmt.Sprintf("127.0.0.1:%d", port), 30*time.Second)
	// The webhook listens before the admin listener does, and before the
	// runner has restored the stored facts: ask once both are done, and
	// before any live record could run the playbook again.
	e.waitListening(t, adminAddr, 30*time.Second)
	waitFor(t, "the stored facts restored", 30*time.Second, func() bool {
		return strings.Contains(e.out.String(), `"message":"facts restored"`)
	})
	if !hasFact() {
		t.Fatalf("the fact fed back by the playbook is gone after the restart: facts %v", facts())
	}
	if code := postJSON(t, hook, []byte(`{"kind": "check"}`)); code != 200 {
		t.Fatalf("check event: %d", code)
	}
	waitFor(t, "the rule joining the fact", 60*time.Second, func() bool {
		b, _ := os.ReadFile(out)
		return strings.Count(string(b), "checked") == 1
	})
}
