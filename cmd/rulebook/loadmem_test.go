package main

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

// TestBoundLoadMemory: the load of a rulebook runs under a memory limit
// in proportion to its text (at least loadMemMin), and the process's
// limit comes back after, once however often restore is called; a limit
// already set is kept.
func TestBoundLoadMemory(t *testing.T) {
	if os.Getenv("GOMEMLIMIT") != "" {
		t.Skip("GOMEMLIMIT is set: the load keeps it")
	}
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	dir := t.TempDir()
	small, big := filepath.Join(dir, "small.yml"), filepath.Join(dir, "big.yml")
	if err := os.WriteFile(small, []byte("- name: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, make([]byte, 2<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	for _, tc := range []struct {
		path string
		want int64
	}{{small, loadMemMin}, {big, loadMemPerByte * 2 << 20}, {filepath.Join(dir, "missing.yml"), math.MaxInt64}} {
		restore := boundLoadMemory(tc.path)
		if got := debug.SetMemoryLimit(-1); got != tc.want {
			t.Fatalf("%s: limit %d while loading, want %d", filepath.Base(tc.path), got, tc.want)
		}
		restore()
		debug.SetMemoryLimit(123 << 20) // set by someone else after the load
		restore()
		if got := debug.SetMemoryLimit(-1); got != 123<<20 {
			t.Fatalf("%s: a second restore changed the limit to %d", filepath.Base(tc.path), got)
		}
		debug.SetMemoryLimit(math.MaxInt64)
	}
	debug.SetMemoryLimit(1 << 30)
	restore := boundLoadMemory(big)
	if got := debug.SetMemoryLimit(-1); got != 1<<30 {
		t.Fatalf("a limit in place became %d", got)
	}
	restore()
	if got := debug.SetMemoryLimit(-1); got != 1<<30 {
		t.Fatalf("a limit in place became %d after the load", got)
	}
}
