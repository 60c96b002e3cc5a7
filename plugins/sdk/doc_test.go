package sdk_test

import (
	"context"
	"go/ast"
	"go/doc/comment"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/plugins"
)

// docBlocks returns the code blocks of the package documentation in
// sdk.go, as go doc shows them.
func docBlocks(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "sdk.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	d := new(comment.Parser).Parse((&ast.CommentGroup{List: f.Doc.List}).Text())
	for _, b := range d.Content {
		if c, ok := b.(*comment.Code); ok {
			blocks = append(blocks, c.Text)
		}
	}
	return blocks
}

// TestDocumentedPluginBuilds follows the package documentation as a plugin
// author would: a module of its own in a new directory beside a checkout
// of Rulebook (here a symlink to this repository), set up with the
// documented commands, the documented main.go, built; the binary is then
// started through the plugin host and its action invoked against a
// webhook. Offline: modules come from the module cache.
func TestDocumentedPluginBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a plugin binary")
	}
	var commands, mainGo string
	for _, b := range docBlocks(t) {
		switch {
		case strings.HasPrefix(b, "go mod init "):
			commands = b
		case strings.HasPrefix(b, "package main\n"):
			mainGo = b
		}
	}
	if commands == "" || mainGo == "" {
		t.Fatalf("the package doc lost its set-up commands or its main.go")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	if err := os.Symlink(root, filepath.Join(work, "rulebook")); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(work, "pager")
	os.Mkdir(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(mainGo), 0o644); err != nil {
		t.Fatal(err)
	}
	// Offline: no proxy and no checksum database; go.sum is written from
	// the module cache, whose contents were verified when downloaded (as
	// the repository's own tests need them).
	env := append(os.Environ(), "GOPROXY=off", "GOSUMDB=off", "GOFLAGS=-mod=mod", "GOWORK=off")
	for _, line := range strings.Split(strings.TrimSpace(commands), "\n") {
		args := strings.Fields(line)
		if args[0] != "go" {
			t.Fatalf("documented command %q is not a go command", line)
		}
		cmd := exec.Command("go", args[1:]...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
	}
	gomod, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
	for _, want := range []string{"module example.com/rulebook-plugin-pager", "replace github.com/rulebook-dev/rulebook => ../rulebook", "github.com/rulebook-dev/rulebook v0.0.0"} {
		if !strings.Contains(string(gomod), want) {
			t.Errorf("go.mod lacks %q:\n%s", want, gomod)
		}
	}

	// The binary is a working plugin.
	bin := filepath.Join(work, "bin")
	os.Mkdir(bin, 0o755)
	if err := os.Rename(filepath.Join(dir, "rulebook-plugin-pager"), filepath.Join(bin, "rulebook-plugin-pager")); err != nil {
		t.Fatal(err)
	}
	host, err := plugins.NewHost(plugins.Options{Dirs: []string{bin}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := host.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var spec *engine.ActionSpec
	for _, s := range host.Specs() {
		if s.Type == "pager.page" {
			spec = &s
		}
	}
	if spec == nil {
		t.Fatalf("no pager.page action; plugins %+v", host.Infos())
	}
	if err := spec.Check(map[string]any{"url": "http://x"}); err == nil {
		t.Error("the documented schema accepted arguments without a message")
	}
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r.Header.Get("Idempotency-Key") + " " + string(b)
	}))
	defer srv.Close()
	act, err := spec.New(engine.ActionEnv{})
	if err != nil {
		t.Fatal(err)
	}
	res := act.Run(ctx, &engine.Invocation{ID: "inv-1", Action: "pager.page", Args: map[string]any{"url": srv.URL, "message": "disk full"}})
	if res.Status != engine.Succeeded || res.Output != "paged (200)" {
		t.Fatalf("run: %+v", res)
	}
	if g := <-got; g != "inv-1 disk full" {
		t.Errorf("webhook got %q, want %q", g, "inv-1 disk full")
	}
}
