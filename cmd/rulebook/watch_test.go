package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWatchFileSeesWritesAndReplacements: editors write in place or rename a
// new file over the old one; both must trigger one reload.
func TestWatchFileSeesWritesAndReplacements(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rb.yml")
	os.WriteFile(path, []byte("v1"), 0o644)
	other := filepath.Join(dir, "other.yml")
	changed := make(chan struct{}, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := watchFile(ctx, path, func() { changed <- struct{}{} }, discardLog()); err != nil {
		t.Fatal(err)
	}
	expect := func(what string) {
		t.Helper()
		select {
		case <-changed:
		case <-time.After(5 * time.Second):
			t.Fatalf("no reload after %s", what)
		}
	}
	os.WriteFile(path, []byte("v2"), 0o644)
	expect("an in-place write")
	tmp := filepath.Join(dir, ".rb.yml.tmp")
	os.WriteFile(tmp, []byte("v3"), 0o644)
	os.Rename(tmp, path)
	expect("a rename over the file")
	os.WriteFile(other, []byte("x"), 0o644)
	select {
	case <-changed:
		t.Fatal("a change to another file in the directory triggered a reload")
	case <-time.After(500 * time.Millisecond):
	}
}
