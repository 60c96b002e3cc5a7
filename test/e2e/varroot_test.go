package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/test/rbtest"
)

const varRootPlaybook = `- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.copy:
        dest: %q
        content: "{{ ansible_eda.event.host }} {{ ansible_eda.event.severity }}"
`

const varRootRulebook = `- name: var root
  sources:
    - name: hook
      webhook: {address: "127.0.0.1:%[1]d", path: /hook}
  rules:
    - name: restart it
      condition: event.payload.alert.severity == "critical"
      action:
        run_playbook:
          name: %[2]s
          var_root: payload.alert
          inventory: "localhost,"
          limit: localhost
          connection: local
`

// var_root (EDA's, docs/actions.rst) hands the real ansible-playbook the
// value at the key path as ansible_eda.event.
func TestVarRootReachesThePlaybook(t *testing.T) {
	need(t, "ansible-playbook")
	dir := t.TempDir()
	out := filepath.Join(dir, "alert.txt")
	pb := filepath.Join(dir, "show.yml")
	writeFile(t, pb, fmt.Sprintf(varRootPlaybook, out))
	port := rbtest.FreePort(t)
	e := startRulebook(t, dir, fmt.Sprintf(varRootRulebook, port, pb), engineOptions{})
	defer e.stop(t, 60*time.Second)
	e.waitListening(t, fmt.Sprintf("127.0.0.1:%d", port), 30*time.Second)
	if code := postJSON(t, fmt.Sprintf("http://127.0.0.1:%d/hook", port), []byte(`{"alert": {"host": "web1", "severity": "critical"}}`)); code != 200 {
		t.Fatalf("event: %d", code)
	}
	waitFor(t, "the playbook's file", 120*time.Second, func() bool {
		b, _ := os.ReadFile(out)
		return strings.TrimSpace(string(b)) == "web1 critical"
	})
}
