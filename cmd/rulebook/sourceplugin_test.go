package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rulebook-dev/rulebook/plugins"
)

// A rulebook declares a source plugin with its path and sha256 and uses it
// as a source type: its arguments are checked against the plugin's schema
// at load, with file:line:col; a wrong checksum is refused; `plugins list`
// and `describe` show it.
func TestDeclaredSourcePlugin(t *testing.T) {
	dir := t.TempDir()
	sum := buildPlugin(t, dir, "rulebook-source-jsonl")
	write := func(name, sum, args string) string {
		p := filepath.Join(dir, name)
		rb := fmt.Sprintf("- name: audit\n  plugins:\n    - {path: bin/rulebook-source-jsonl, sha256: %s}\n  sources:\n    - name: log\n      jsonl: %s\n  rules:\n    - {name: r, condition: event.line.n == 1, action: {none: {}}}\n", sum, args)
		if err := os.WriteFile(p, []byte(rb), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yml", sum, "{path: /var/log/a.jsonl}")
	if code, out, errOut := runCLI(t, "validate", good); code != 0 {
		t.Fatalf("valid rulebook: exit %d\n%s%s", code, out, errOut)
	}
	bad := write("bad.yml", sum, "{path: /var/log/a.jsonl, folow: true}")
	code, out, _ := runCLI(t, "validate", bad)
	if want := bad + `:6:39: ruleset "audit": sources[0]: jsonl: folow: unknown key`; code != 1 || !strings.Contains(out, want) {
		t.Fatalf("unknown argument: exit %d, want %q naming folow in:\n%s", code, want, out)
	}
	wrong := write("wrong.yml", strings.Repeat("0", 64), "{path: /var/log/a.jsonl}")
	code, out, errOut := runCLI(t, "validate", wrong)
	if code == 0 || !strings.Contains(out+errOut, "checksum mismatch") {
		t.Fatalf("wrong sha256: exit %d\n%s%s", code, out, errOut)
	}

	code, out, _ = runCLI(t, "plugins", "list", "--plugins-dir", filepath.Join(dir, "bin"))
	if code != 0 || !strings.Contains(out, "SOURCE") || !strings.Contains(out, "jsonl   1.0.0") {
		t.Fatalf("plugins list: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "plugins", "describe", "jsonl", "--plugins-dir", filepath.Join(dir, "bin"))
	if code != 0 || !strings.Contains(out, "kind:        source") || !strings.Contains(out, `"poll_interval"`) {
		t.Fatalf("plugins describe: exit %d\n%s", code, out)
	}
}

// buildPlugin builds the first-party plugin cmd/NAME into DIR/bin/NAME
// and returns its sha256, as a rulebook's plugins: entry names it.
func buildPlugin(t *testing.T, dir, name string) string {
	t.Helper()
	bin := filepath.Join(dir, "bin", name)
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join(repoRoot(t), "cmd", name)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, out)
	}
	sum, err := plugins.FileSHA256(bin)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}
