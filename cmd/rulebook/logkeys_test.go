package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rulebook-dev/rulebook/test/rbtest"
)

// TestJSONLogLinesHaveNoDuplicateKeys: every line `rulebook run --log-format
// json` writes is an object whose keys appear once. A key written twice
// (a logger given the same field by its caller and by its component) is
// kept differently by each log processor: some take the first, some the
// last, some reject the line.
func TestJSONLogLinesHaveNoDuplicateKeys(t *testing.T) {
	dir := t.TempDir()
	// An action plugin and a source plugin, for the lines of their hosts.
	sums := map[string]string{}
	for _, name := range []string{"rulebook-plugin-ticket", "rulebook-source-jsonl"} {
		sums[name] = buildPlugin(t, dir, name)
	}
	in := filepath.Join(dir, "in.jsonl")
	if err := os.WriteFile(in, []byte(`{"n":1}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rb := filepath.Join(dir, "rb.yml")
	if err := os.WriteFile(rb, []byte(fmt.Sprintf(`- name: rs
  hosts: all
  plugins:
    - {path: bin/rulebook-plugin-ticket, sha256: %s}
    - {path: bin/rulebook-source-jsonl, sha256: %s}
  sources:
    - range: {limit: 2}
    - name: log
      jsonl: {path: %s}
    - name: hook
      webhook: {host: 127.0.0.1, port: 0, insecure: true}
  rules:
    - name: every number runs a command
      condition: event.i >= 0
      action:
        run_command:
          argv: ["true"]
    - name: the line ends the run
      condition: event.line.n == 1
      action:
        shutdown: {}
`, sums["rulebook-plugin-ticket"], sums["rulebook-source-jsonl"], in)), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr rbtest.Buffer
	code := run([]string{"run", rb, "--data-dir", filepath.Join(dir, "data"), "--log-format", "json", "--log-level", "debug"}, strings.NewReader(""), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("run: exit %d: %s", code, stderr.String())
	}
	components, sourceLines := map[string]bool{}, 0
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		repeated, err := rbtest.RepeatedKeys(line)
		if err != nil {
			t.Fatalf("log line: %v", err)
		}
		for _, k := range repeated {
			t.Errorf("key %q twice in log line %s", k, line)
		}
		var m map[string]any
		_ = json.Unmarshal([]byte(line), &m)
		if c, ok := m["component"].(string); ok {
			components[c] = true
		}
		if m["source"] == "hook" {
			sourceLines++ // the insecure listener's warning
		}
	}
	// The run logged from the parts this test is about.
	if sourceLines == 0 {
		t.Errorf("no log line of source %q in:\n%s", "hook", stderr.String())
	}
	for _, c := range []string{"journal", "dispatch", "engine", "plugins", "source-plugins"} {
		if !components[c] {
			t.Errorf("no log line of component %q in:\n%s", c, stderr.String())
		}
	}
}
