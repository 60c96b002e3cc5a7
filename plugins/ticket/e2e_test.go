package ticket

import (
	"context"
	"errors"
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

// TestPluginBinaryThroughTheHost builds rulebook-plugin-ticket, lets the
// engine's plugin host discover and start it, registers its actions, and
// runs them against the fake ServiceNow, Jira and GitHub: opening twice
// with one key makes one ticket and one comment, and resolve closes it.
func TestPluginBinaryThroughTheHost(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts a plugin binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, plugins.FilePrefix+"ticket")
	build := exec.Command("go", "build", "-o", bin, "github.com/rulebook-dev/rulebook/cmd/rulebook-plugin-ticket")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	stateDir := t.TempDir()
	h, err := plugins.NewHost(plugins.Options{Dirs: []string{dir}, StateDir: stateDir, Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	infos, err := h.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || infos[0].Name != "ticket" || infos[0].Version != Version || len(infos[0].Actions) != 3 {
		t.Fatalf("infos = %+v", infos)
	}
	reg := engine.NewRegistry()
	if err := h.Register(reg); err != nil {
		t.Fatal(err)
	}
	var actions = map[string]engine.Action{}
	for _, typ := range []string{ActionOpen, ActionComment, ActionResolve} {
		spec, ok := reg.Action(typ)
		if !ok {
			t.Fatalf("%s not registered; have %v", typ, reg.ActionTypes())
		}
		a, err := spec.New(engine.ActionEnv{})
		if err != nil {
			t.Fatal(err)
		}
		actions[typ] = a
	}

	t.Run("load-time checks", func(t *testing.T) {
		spec, _ := reg.Action(ActionOpen)
		ok := map[string]any{
			"system": "{{ vars.system }}", "url": "https://x", "token": "${env:TOKEN}", "project": "OPS",
			"correlation_key": "{{ event.alert.fingerprint }}", "summary": "{{ event.alert.labels.alertname }} firing",
			"labels": "{{ event.labels }}", "api_version": 3,
		}
		if err := spec.Check(ok); err != nil {
			t.Errorf("templated args rejected: %v", err)
		}
		bad := map[string]any{"system": "jira", "url": "https://x", "token": "t", "correlation_key": "k", "summary": "s", "projcet": "OPS"}
		err := spec.Check(bad)
		var ae *engine.ArgError
		if !argErrorAt(err, "projcet") {
			t.Errorf("typo accepted or misplaced: %v", err)
		}
		err = spec.Check(map[string]any{"system": "jira", "url": "https://x", "token": "t", "correlation_key": "k", "summary": "s"})
		if !errors.As(err, &ae) || !strings.Contains(err.Error(), `"project"`) {
			t.Errorf("jira without project: %v", err)
		}
		rs, _ := reg.Action(ActionResolve)
		if err := rs.Check(map[string]any{"system": "github", "token": "t", "repo": "a/b"}); err == nil {
			t.Error("resolve without correlation_key or ticket accepted")
		}
	})

	for _, mk := range systems(t) {
		sys := mk(t)
		t.Run(sys.name, func(t *testing.T) {
			run := func(typ string, args map[string]any) engine.Result {
				t.Helper()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				inv := &engine.Invocation{ID: "inv-" + typ, Action: typ, Ruleset: "alerts", Rule: "ticket on alert", Args: args}
				for _, k := range []string{"password", "token"} {
					if s, ok := args[k].(string); ok {
						inv.Secrets = append(inv.Secrets, s)
					}
				}
				return actions[typ].Run(ctx, inv)
			}
			open := with(sys.args, "correlation_key", "fp-e2e", "summary", "HighLatency firing", "description", "p99 > 2s")
			spec, _ := reg.Action(ActionOpen)
			if err := spec.Check(open); err != nil {
				t.Fatalf("check of real args: %v", err)
			}
			if r := run(ActionOpen, open); r.Status != engine.Succeeded || r.Details["action"] != "opened" {
				t.Fatalf("first open = %+v", r)
			}
			if r := run(ActionOpen, open); r.Status != engine.Succeeded || r.Details["action"] != "commented" {
				t.Fatalf("second open = %+v", r)
			}
			if n, c := sys.tickets(), sys.comments(0); n != 1 || c != 1 {
				t.Fatalf("%d tickets, %d comments; want 1 and 1", n, c)
			}
			if r := run(ActionResolve, with(sys.args, "correlation_key", "fp-e2e", "note", "resolved")); r.Status != engine.Succeeded || !sys.closed(0) {
				t.Fatalf("resolve = %+v, closed %v", r, sys.closed(0))
			}
			// A rejected credential is a permanent failure, with the
			// secret redacted from anything the API echoed.
			wrong := with(open, "correlation_key", "fp-other")
			for _, k := range []string{"password", "token"} {
				if _, ok := wrong[k]; ok {
					wrong[k] = "not-the-secret"
				}
			}
			if r := run(ActionOpen, wrong); r.Status != engine.Failed || r.HTTPStatus != 401 || strings.Contains(r.Error, "not-the-secret") {
				t.Fatalf("wrong credentials = %+v", r)
			}
		})
	}

	if _, err := os.Stat(filepath.Join(stateDir, "ticket", StoreFile)); err != nil {
		t.Errorf("the plugin kept no state in its state dir: %v", err)
	}
}

// argErrorAt reports whether err, or one of the errors it joins (the schema
// check reports every problem), is an *engine.ArgError at the dotted path.
func argErrorAt(err error, path string) bool {
	var ae *engine.ArgError
	if errors.As(err, &ae) && strings.Join(ae.Path, ".") == path {
		return true
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if argErrorAt(e, path) {
				return true
			}
		}
	}
	return false
}
