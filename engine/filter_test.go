package engine

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func parseJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("bad json %s: %v", s, err)
	}
	return m
}

func compileChain(t *testing.T, list ...FilterConfig) *FilterChain {
	t.Helper()
	c := &Compiler{}
	fc, err := c.CompileFilters(list)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return fc
}

// stripEngineMeta removes what Apply puts back, to compare the rest.
func stripEngineMeta(ev Event) Event {
	if m, ok := ev[MetaKey].(map[string]any); ok {
		delete(m, MetaUUID)
		delete(m, MetaSource)
		delete(m, MetaReceivedAt)
		if len(m) == 0 {
			delete(ev, MetaKey)
		}
	}
	return ev
}

func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// The cases follow the examples of EDA's filter documentation (ansible.eda
// and ansible-rulebook's eda.builtin filters).
func TestFiltersEDAExamples(t *testing.T) {
	tests := []struct {
		name    string
		filters []FilterConfig
		in      string
		want    []string
	}{
		{
			name: "json_filter: includes override excludes (EDA example)",
			filters: []FilterConfig{{Name: "ansible.eda.json_filter", Args: map[string]any{
				"include_keys": []any{"key3", "key4", "f_use*"},
				"exclude_keys": []any{"key1", "key2", "f_ignore_1"},
			}}},
			in:   `{"key1":{"key2":{"f_ignore_1":1,"f_ignore_2":2}},"key3":{"key4":{"f_use_1":42,"f_use_2":45}}}`,
			want: []string{`{"key3":{"key4":{"f_use_1":42,"f_use_2":45}}}`},
		},
		{
			name: "json_filter: patterns at any depth, include keeps clone_url (rulebook docs example)",
			filters: []FilterConfig{{Name: "json_filter", Args: map[string]any{
				"include_keys": []any{"clone_url"},
				"exclude_keys": []any{"*_url", "_links", "base", "sender", "owner", "user"},
			}}},
			in:   `{"clone_url":"c","html_url":"h","_links":{},"sender":"s","repository":{"git_url":"g","name":"r","owner":{"id":1}},"list":[{"user":1}]}`,
			want: []string{`{"clone_url":"c","list":[{"user":1}],"repository":{"name":"r"}}`},
		},
		{
			name:    "dashes_to_underscores: nested and in lists",
			filters: []FilterConfig{{Name: "eda.builtin.dashes_to_underscores"}},
			in:      `{"X-Y":1,"a":{"b-c":[{"d-e":2}]}}`,
			want:    []string{`{"X_Y":1,"a":{"b_c":[{"d_e":2}]}}`},
		},
		{
			name:    "dashes_to_underscores: overwrite (default) replaces an existing key",
			filters: []FilterConfig{{Name: "dashes_to_underscores", Args: map[string]any{"overwrite": true}}},
			in:      `{"a-b":"new","a_b":"old"}`,
			want:    []string{`{"a_b":"new"}`},
		},
		{
			name:    "dashes_to_underscores: overwrite false keeps the existing key",
			filters: []FilterConfig{{Name: "dashes_to_underscores", Args: map[string]any{"overwrite": false}}},
			in:      `{"a-b":"new","a_b":"old"}`,
			want:    []string{`{"a_b":"old"}`},
		},
		{
			name:    "normalize_keys: runs of other characters become one underscore (EDA doc)",
			filters: []FilterConfig{{Name: "ansible.eda.normalize_keys"}},
			in:      `{"server-name":1,"server.com/&abc":{"x y":[{"a:b":2}]}}`,
			want:    []string{`{"server_com_abc":{"x_y":[{"a_b":2}]},"server_name":1}`},
		},
		{
			name:    "normalize_keys: overwrite false keeps the existing key",
			filters: []FilterConfig{{Name: "normalize_keys", Args: map[string]any{"overwrite": false}}},
			in:      `{"a-b":"new","a_b":"old"}`,
			want:    []string{`{"a_b":"old"}`},
		},
		{
			name: "insert_hosts_to_meta: string split by host_separator (EDA example)",
			filters: []FilterConfig{{Name: "ansible.eda.insert_hosts_to_meta", Args: map[string]any{
				"host_path": "app.target", "path_separator": ".", "host_separator": ";", "raise_error": true, "log_error": true}}},
			in:   `{"app":{"target":"web1;web2"}}`,
			want: []string{`{"app":{"target":"web1;web2"},"meta":{"hosts":["web1","web2"]}}`},
		},
		{
			name: "insert_hosts_to_meta: a list, other path separator",
			filters: []FilterConfig{{Name: "insert_hosts_to_meta", Args: map[string]any{
				"host_path": "payload/hosts", "path_separator": "/"}}},
			in:   `{"payload":{"hosts":["a","b"]}}`,
			want: []string{`{"meta":{"hosts":["a","b"]},"payload":{"hosts":["a","b"]}}`},
		},
		{
			name:    "insert_hosts_to_meta: missing path leaves the event alone",
			filters: []FilterConfig{{Name: "insert_hosts_to_meta", Args: map[string]any{"host_path": "payload.host", "log_error": false}}},
			in:      `{"payload":{}}`,
			want:    []string{`{"payload":{}}`},
		},
		{
			name: "event_splitter: EDA example with attributes_key_map and extras",
			filters: []FilterConfig{{Name: "eda.builtin.event_splitter", Args: map[string]any{
				"splitter_key":       "incident.alerts",
				"attributes_key_map": map[string]any{"id": "incident.id", "active": "incident.active", "gone": "incident.nope"},
				"extras":             map[string]any{"region": "us-east"},
			}}},
			in: `{"incident":{"id":7,"active":true,"alerts":[{"name":"a"},{"name":"b"}]}}`,
			want: []string{
				`{"active":true,"id":7,"name":"a","region":"us-east"}`,
				`{"active":true,"id":7,"name":"b","region":"us-east"}`,
			},
		},
		{
			name:    "event_splitter: missing key leaves the event intact",
			filters: []FilterConfig{{Name: "event_splitter", Args: map[string]any{"splitter_key": "incident.alerts"}}},
			in:      `{"x":1}`,
			want:    []string{`{"x":1}`},
		},
		{
			name:    "event_splitter: an empty list gives no event",
			filters: []FilterConfig{{Name: "event_splitter", Args: map[string]any{"splitter_key": "alerts"}}},
			in:      `{"alerts":[]}`,
			want:    nil,
		},
		{
			name:    "set: meta.hosts from the payload",
			filters: []FilterConfig{{Name: "set", Args: map[string]any{"meta.hosts": "payload.hosts", "payload.n": "len(event.payload.hosts) + 1"}}},
			in:      `{"payload":{"hosts":["h1","h2"]}}`,
			want:    []string{`{"meta":{"hosts":["h1","h2"]},"payload":{"hosts":["h1","h2"],"n":3}}`},
		},
		{
			name:    "set: a missing path leaves the target alone",
			filters: []FilterConfig{{Name: "set", Args: map[string]any{"meta.hosts": "payload.hosts", "tag": "payload.tag ?? 'none'"}}},
			in:      `{"payload":{}}`,
			want:    []string{`{"payload":{},"tag":"none"}`},
		},
		{
			name: "chain: split then hosts per part",
			filters: []FilterConfig{
				{Name: "event_splitter", Args: map[string]any{"splitter_key": "payload.alerts"}},
				{Name: "insert_hosts_to_meta", Args: map[string]any{"host_path": "host"}},
			},
			in: `{"payload":{"alerts":[{"host":"a"},{"host":"b"}]}}`,
			want: []string{
				`{"host":"a","meta":{"hosts":["a"]}}`,
				`{"host":"b","meta":{"hosts":["b"]}}`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fc := compileChain(t, tc.filters...)
			got, err := fc.Apply(parseJSON(t, tc.in))
			if err != nil {
				t.Fatalf("apply: %v", err)
			}
			var gotS []string
			for _, ev := range got {
				gotS = append(gotS, asJSON(stripEngineMeta(ev)))
			}
			if !reflect.DeepEqual(gotS, tc.want) {
				t.Errorf("got  %v\nwant %v", gotS, tc.want)
			}
		})
	}
}

func TestFilterRuntimeErrors(t *testing.T) {
	tests := []struct {
		name   string
		filter FilterConfig
		in     string
		want   string
	}{
		{"insert_hosts_to_meta raise_error", FilterConfig{Name: "insert_hosts_to_meta", Args: map[string]any{"host_path": "a.b", "raise_error": true, "log_error": false}}, `{"a":{}}`, `filters[0] (insert_hosts_to_meta): event does not contain "a.b"`},
		{"insert_hosts_to_meta non-string host", FilterConfig{Name: "insert_hosts_to_meta", Args: map[string]any{"host_path": "h"}}, `{"h":["a",1]}`, `not a valid hostname`},
		{"insert_hosts_to_meta mapping", FilterConfig{Name: "insert_hosts_to_meta", Args: map[string]any{"host_path": "h"}}, `{"h":{"a":1}}`, `not a valid hostname`},
		{"event_splitter raise_error", FilterConfig{Name: "event_splitter", Args: map[string]any{"splitter_key": "a.b", "raise_error": true}}, `{"a":{}}`, `splitter_key "a.b" is not in the event`},
		{"event_splitter not a list", FilterConfig{Name: "event_splitter", Args: map[string]any{"splitter_key": "a"}}, `{"a":{"x":1}}`, `holds a map, not a list`},
		{"event_splitter item not a mapping", FilterConfig{Name: "event_splitter", Args: map[string]any{"splitter_key": "a"}}, `{"a":[1]}`, `a.0 is a number, not a mapping`},
		{"set into a scalar", FilterConfig{Name: "set", Args: map[string]any{"x.y": "1"}}, `{"x":3}`, `cannot set "x.y": "x" holds a number, not a mapping`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fc := compileChain(t, tc.filter)
			_, err := fc.Apply(parseJSON(t, tc.in))
			if _, ok := IsFilterError(err); !ok || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a FilterError containing %q", err, tc.want)
			}
		})
	}
}

func TestFilterCompileErrors(t *testing.T) {
	tests := []struct {
		name   string
		filter FilterConfig
		path   []string
		want   string
	}{
		{"unknown filter", FilterConfig{Name: "json_filtr"}, nil, `unknown filter "json_filtr"`},
		{"unknown arg", FilterConfig{Name: "json_filter", Args: map[string]any{"include": []any{"a"}}}, []string{"include"}, `unknown key "include"`},
		{"not a list", FilterConfig{Name: "json_filter", Args: map[string]any{"include_keys": "a"}}, []string{"include_keys"}, `want a list`},
		{"overwrite not bool", FilterConfig{Name: "normalize_keys", Args: map[string]any{"overwrite": "yes"}}, []string{"overwrite"}, `want true or false`},
		{"no splitter_key", FilterConfig{Name: "event_splitter", Args: map[string]any{"extras": map[string]any{}}}, nil, `missing key "splitter_key"`},
		{"set bad expression", FilterConfig{Name: "set", Args: map[string]any{"meta.hosts": "payload.hosts +"}}, []string{"meta.hosts"}, `unexpected token`},
		{"set engine meta", FilterConfig{Name: "set", Args: map[string]any{"meta.uuid": "'x'"}}, []string{"meta.uuid"}, `set by the engine`},
		{"set not a string", FilterConfig{Name: "set", Args: map[string]any{"a": 1}}, []string{"a"}, `want an expression`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := (&Compiler{}).CompileFilters([]FilterConfig{{Name: "dashes_to_underscores"}, tc.filter})
			fe, ok := IsFilterError(err)
			if !ok || fe.Index != 1 || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a FilterError at index 1 containing %q", err, tc.want)
			}
			var ae *ArgError
			if errors.As(err, &ae) {
				if !reflect.DeepEqual(ae.Path, tc.path) {
					t.Errorf("path %v, want %v", ae.Path, tc.path)
				}
			} else if tc.path != nil {
				t.Errorf("no ArgError, want one at %v", tc.path)
			}
		})
	}
}

func TestFilterKeepsEngineMeta(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ev := NewEvent(parseJSON(t, `{"a":1,"meta":{"headers":{"X-A":"1"}}}`), "src", "webhook", at)
	id := EventID(ev)
	fc := compileChain(t, FilterConfig{Name: "json_filter", Args: map[string]any{"exclude_keys": []any{"*"}}})
	out, err := fc.Apply(ev)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"meta": map[string]any{"uuid": id, "source": map[string]any{"name": "src", "type": "webhook"}, "received_at": "2026-01-02T03:04:05Z"}}
	if len(out) != 1 || !reflect.DeepEqual(out[0], Event(want)) {
		t.Fatalf("got %v, want %v", out, want)
	}

	// Split parts get distinct IDs derived from the original: the same
	// delivery splits into the same IDs.
	split := compileChain(t, FilterConfig{Name: "event_splitter", Args: map[string]any{"splitter_key": "l"}})
	ids := func() []string {
		ev := NewEvent(parseJSON(t, `{"l":[{"x":1},{"x":2}]}`), "src", "webhook", at)
		Meta(ev)[MetaUUID] = "fixed"
		out, err := split.Apply(ev)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range out {
			ids = append(ids, EventID(e))
			if Meta(e)[MetaReceivedAt] != "2026-01-02T03:04:05Z" {
				t.Errorf("part lost received_at: %v", e)
			}
		}
		return ids
	}
	a, b := ids(), ids()
	if len(a) != 2 || a[0] == a[1] || a[0] == "fixed" || !reflect.DeepEqual(a, b) {
		t.Fatalf("split ids %v then %v: want two distinct, stable, derived ids", a, b)
	}
}

type recordEmitter struct {
	got      []Entry
	outcomes func(i int) Outcome
}

func (r *recordEmitter) Emit(_ context.Context, _ SourceRef, entries []Entry) ([]Outcome, error) {
	r.got = append(r.got, entries...)
	out := make([]Outcome, len(entries))
	for i := range out {
		if r.outcomes != nil {
			out[i] = r.outcomes(i)
		}
	}
	return out, nil
}

func TestFilterEmitterSplitsEntries(t *testing.T) {
	rec := &recordEmitter{outcomes: func(i int) Outcome {
		if i == 0 {
			return Duplicate
		}
		return Accepted
	}}
	chain := compileChain(t, FilterConfig{Name: "event_splitter", Args: map[string]any{"splitter_key": "l"}})
	em := FilterEmitter(rec, chain)
	entries := []Entry{
		{Event: parseJSON(t, `{"l":[{"x":1},{"x":2}]}`), DedupeKey: "d1", Position: "p1"},
		{Event: parseJSON(t, `{"l":[]}`), DedupeKey: "d2", Position: "p2"},
		{Event: parseJSON(t, `{"l":[{"x":3}]}`), Position: "p3"},
	}
	out, err := em.Emit(context.Background(), SourceRef{}, entries)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Outcome{Accepted, Accepted, Accepted}; !reflect.DeepEqual(out, want) {
		t.Errorf("outcomes %v, want %v", out, want)
	}
	var keys, pos []string
	for _, e := range rec.got {
		keys = append(keys, e.DedupeKey)
		pos = append(pos, e.Position)
	}
	if want := []string{"d1#0", "d1#1", ""}; !reflect.DeepEqual(keys, want) {
		t.Errorf("dedupe keys %q, want %q", keys, want)
	}
	if want := []string{"", "p1", "p3"}; !reflect.DeepEqual(pos, want) {
		t.Errorf("positions %q, want %q", pos, want)
	}

	// A refused event fails the whole call; nothing reaches the journal.
	rec.got = nil
	strict := FilterEmitter(rec, compileChain(t, FilterConfig{Name: "event_splitter", Args: map[string]any{"splitter_key": "l", "raise_error": true}}))
	_, err = strict.Emit(context.Background(), SourceRef{}, []Entry{{Event: parseJSON(t, `{"l":[{"x":1}]}`)}, {Event: parseJSON(t, `{}`)}})
	if _, ok := IsFilterError(err); !ok || len(rec.got) != 0 {
		t.Fatalf("err %v, stored %d: want a FilterError and nothing stored", err, len(rec.got))
	}
}
