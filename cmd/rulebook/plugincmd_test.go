package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPluginsListSearchesTheWorkingDirectory: without --plugins-dir,
// `plugins list` finds plugins/ in the working directory (where run finds
// them beside a rulebook there) and says which directories it searched.
func TestPluginsListSearchesTheWorkingDirectory(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	code, out, errs := runCLI(t, "plugins", "list")
	want := filepath.Join(dir, "plugins") + " (does not exist)"
	if code != 0 || !strings.HasPrefix(out, "no plugins found\n") || !strings.Contains(out, "searched (default:") || !strings.Contains(out, want) {
		t.Fatalf("no plugins/: exit %d, want the searched dirs with %q:\n%s%s", code, want, out, errs)
	}

	// A binary that is no plugin is still found, and listed as failing.
	os.Mkdir(filepath.Join(dir, "plugins"), 0o755)
	fake := filepath.Join(dir, "plugins", "rulebook-plugin-fake")
	os.WriteFile(fake, []byte("#!/bin/sh\nexit 1\n"), 0o755)
	code, out, errs = runCLI(t, "plugins", "list")
	if code != 0 || !strings.Contains(out, "fake") || !strings.Contains(out, fake) || !strings.Contains(out, "\n  "+filepath.Join(dir, "plugins")+"\n") {
		t.Fatalf("with plugins/: exit %d:\n%s%s", code, out, errs)
	}

	other := t.TempDir()
	code, out, _ = runCLI(t, "plugins", "list", "--plugins-dir", other)
	if code != 0 || strings.Contains(out, "fake") || !strings.Contains(out, "searched (--plugins-dir):\n  "+other+"\n") {
		t.Fatalf("--plugins-dir: exit %d:\n%s", code, out)
	}
}
