package dispatch

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/rulebooks"
	"github.com/rulebook-dev/rulebook/sources/generic"
)

// TestEventDataCannotCompleteASecretRef runs rulebooks through the engine
// and this dispatcher, as `rulebook run` does, with events written by an
// attacker who wants a secret the rulebook never named sent back to them.
// Each case failed when references were searched for in rendered text:
// the event completed a "${env:...}" or "${file:...}" that the dispatcher
// then resolved.
func TestEventDataCannotCompleteASecretRef(t *testing.T) {
	const token, fileSecret = "tok-7f3a9c-secret", "file-51be2d-secret"
	t.Setenv("HOOK_TOKEN", token)
	t.Setenv("RB_ALLOWED", "allowed-value")
	secretFile := filepath.Join(t.TempDir(), "hostname")
	if err := os.WriteFile(secretFile, []byte(fileSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		args    string // the action's arguments, YAML flow mapping
		payload map[string]any
		want    map[string]any // what the action must see
	}{{
		name:    "literal $ before an inserted value",
		args:    `{text: "price: ${{ event.payload.price }}"}`,
		payload: map[string]any{"price": "{env:HOOK_TOKEN}"},
		want:    map[string]any{"text": "price: ${env:HOOK_TOKEN}"},
	}, {
		name:    "two inserted values side by side",
		args:    `{text: "{{ event.payload.a }}{{ event.payload.b }}"}`,
		payload: map[string]any{"a": "$", "b": "{file:" + secretFile + "}"},
		want:    map[string]any{"text": "${file:" + secretFile + "}"},
	}, {
		name:    "map rendered into text with a reference as key",
		args:    `{text: "labels={{ event.payload.labels }}"}`,
		payload: map[string]any{"labels": map[string]any{"${file:" + secretFile + "}": "x"}},
		want:    map[string]any{"text": `labels={"${file:` + secretFile + `}":"x"}`},
	}, {
		name:    "whole value and list items",
		args:    `{whole: "{{ event.payload.v }}", list: "{{ event.payload.l }}"}`,
		payload: map[string]any{"v": "${env:HOOK_TOKEN}", "l": []any{"${env:HOOK_TOKEN}"}},
		want:    map[string]any{"whole": "${env:HOOK_TOKEN}", "list": []any{"${env:HOOK_TOKEN}"}},
	}, {
		// The rulebook's own references still resolve, next to event data
		// that imitates them.
		name:    "rulebook reference next to event data",
		args:    `{text: "${env:RB_ALLOWED} {{ event.payload.v }} $${env:HOOK_TOKEN}", auth: "Bearer ${env:RB_ALLOWED}"}`,
		payload: map[string]any{"v": "${env:HOOK_TOKEN}"},
		want:    map[string]any{"text": "allowed-value ${env:HOOK_TOKEN} ${env:HOOK_TOKEN}", "auth": "Bearer allowed-value"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var seen map[string]any
			act := actionFunc(func(_ context.Context, inv *engine.Invocation) engine.Result {
				mu.Lock()
				defer mu.Unlock()
				seen = inv.Args
				return engine.Success("sent " + engine.Text(inv.Args))
			})
			reg := engine.NewRegistry()
			reg.RegisterSource(generic.Spec())
			reg.RegisterAction(engine.ActionSpec{Type: "x", New: func(engine.ActionEnv) (engine.Action, error) { return act, nil }})
			src := "- name: r\n  sources:\n    - generic: {payload: []}\n  rules:\n    - name: leak\n      condition: event.meta.uuid != \"\"\n      action:\n        x: " + tc.args + "\n"
			rb, err := rulebooks.Parse("test.yml", []byte(src), rulebooks.Options{Registry: reg})
			if err != nil {
				t.Fatal(err)
			}
			store := newMemStore()
			h := start(t, store, newFakeClock(), Config{Actions: ActionMap(map[string]engine.Action{"x": act})})
			var ids []string
			eng := engine.New(rb.Rulesets, engine.Options{Clock: engine.NewFakeClock(t0), Dispatcher: h.d,
				OnFiring: func(f *engine.Firing, _ []engine.RenderedAction) {
					for _, inv := range f.Invocations {
						ids = append(ids, inv.ID)
					}
				}})
			rec := engine.Record{Seq: 1, Source: engine.SourceRef{Ruleset: "r"},
				Event: engine.NewEvent(map[string]any{"payload": tc.payload}, "s", "generic", t0)}
			if err := eng.Process(context.Background(), rec); err != nil {
				t.Fatal(err)
			}
			if len(ids) != 1 {
				t.Fatalf("firings made invocations %v, want one", ids)
			}
			h.waitFinal(ids[0])
			mu.Lock()
			got, _ := json.Marshal(seen)
			mu.Unlock()
			want, _ := json.Marshal(tc.want)
			if string(got) != string(want) {
				t.Errorf("action saw %s\nwant %s", got, want)
			}
			for _, s := range []string{token, fileSecret} {
				if strings.Contains(string(got), s) {
					t.Errorf("event data made the action see a secret the rulebook did not name: %s", got)
				}
			}
			if all := store.historyJSON(); strings.Contains(all, "allowed-value") {
				t.Errorf("a resolved value reached the durable queue or audit: %s", all)
			}
		})
	}
}
