package plugins

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func touch(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), mode); err != nil {
		t.Fatal(err)
	}
}

func TestDiscover(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	touch(t, filepath.Join(a, "rulebook-plugin-ticket"), 0o755)
	touch(t, filepath.Join(a, "rulebook-plugin-notes.txt"), 0o644) // not executable
	touch(t, filepath.Join(a, "other-tool"), 0o755)                // wrong prefix
	if err := os.Mkdir(filepath.Join(a, "rulebook-plugin-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	touch(t, filepath.Join(b, "rulebook-plugin-ticket"), 0o755) // shadowed by a's
	touch(t, filepath.Join(b, "rulebook-plugin-pager"), 0o755)
	declaredPath := filepath.Join(t.TempDir(), "custom-binary")
	touch(t, declaredPath, 0o755)

	got, warnings, err := discover([]string{a, filepath.Join(a, "missing"), b},
		[]Declared{{Path: declaredPath, SHA256: strings.Repeat("AB", 32)}, {Name: "pager", Path: declaredPath}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range got {
		names = append(names, c.name+"="+c.path)
	}
	want := []string{
		"custom-binary=" + declaredPath,
		"pager=" + declaredPath,
		"ticket=" + filepath.Join(a, "rulebook-plugin-ticket"),
	}
	if strings.Join(names, "\n") != strings.Join(want, "\n") {
		t.Errorf("discovered\n%s\nwant\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
	if got[0].checksum != strings.Repeat("ab", 32) || !got[0].declared {
		t.Errorf("declared candidate = %+v", got[0])
	}
	if len(warnings) != 2 || !strings.Contains(strings.Join(warnings, "\n"), "shadowed") {
		t.Errorf("warnings = %q", warnings)
	}
}

func TestDiscoverErrors(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x")
	tests := []struct {
		name     string
		declared []Declared
		want     string
	}{
		{"empty path", []Declared{{Name: "x"}}, "path is empty"},
		{"bad checksum", []Declared{{Path: p, SHA256: "abc"}}, `sha256 "abc" is not 64 hex digits`},
		{"declared twice", []Declared{{Name: "x", Path: p}, {Name: "x", Path: p + "2"}}, `plugin "x" is declared twice`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := discover(nil, tc.declared)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestDiscoverUnreadableDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	touch(t, file, 0o644)
	if _, _, err := discover([]string{file}, nil); err == nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("a file as plugins dir: %v", err)
	}
}

func TestDefaultDirs(t *testing.T) {
	got := DefaultDirs([]string{"/etc/rulebook/site.yml", "/etc/rulebook/other.yml", "/srv/rb/x.yml"}, "/usr/local/bin/rulebook")
	want := []string{"/etc/rulebook/plugins", "/srv/rb/plugins", "/usr/local/bin/plugins"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("DefaultDirs = %v, want %v", got, want)
	}
}

func TestNameFromPath(t *testing.T) {
	for in, want := range map[string]string{
		"/x/rulebook-plugin-ticket":     "ticket",
		"/x/rulebook-plugin-ticket.exe": "ticket",
		"/x/custom":                     "custom",
	} {
		if got := NameFromPath(in); got != want {
			t.Errorf("NameFromPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestListTableAndDescribe(t *testing.T) {
	infos := []Info{
		{Name: "oldproto", Path: "/p/rulebook-plugin-oldproto", Err: errors.New("plugin \"oldproto\": protocol\nversion 0")},
		{Name: "ticket", Path: "/p/rulebook-plugin-ticket", Version: "0.1.0", SHA256: "ab12", ProtocolVersion: 1,
			Description: "tickets",
			Actions: []ActionInfo{
				{Name: "ticket.open", Description: "open one", Schema: `{"type":"object","required":["summary"]}`},
				{Name: "ticket.resolve"},
			}},
	}
	var b bytes.Buffer
	if err := ListTable(&b, infos); err != nil {
		t.Fatal(err)
	}
	want := `NAME      VERSION  ACTIONS                     STATUS  PATH
oldproto  -        -                           error   /p/rulebook-plugin-oldproto
ticket    0.1.0    ticket.open,ticket.resolve  ok      /p/rulebook-plugin-ticket

oldproto: plugin "oldproto": protocol version 0
`
	if got := trimLines(b.String()); got != want {
		t.Errorf("ListTable:\n%s\nwant:\n%s", got, want)
	}

	b.Reset()
	if err := Describe(&b, infos[1]); err != nil {
		t.Fatal(err)
	}
	want = `name:        ticket
path:        /p/rulebook-plugin-ticket
sha256:      ab12
version:     0.1.0
protocol:    1
description: tickets

action ticket.open
  open one
  arguments schema:
  {
    "type": "object",
    "required": [
      "summary"
    ]
  }

action ticket.resolve
  arguments: any object
`
	if b.String() != want {
		t.Errorf("Describe:\n%s\nwant:\n%s", b.String(), want)
	}
}

func trimLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

func TestZerologWriter(t *testing.T) {
	var buf bytes.Buffer
	log := zerolog.New(&buf).With().Str("plugin", "ticket").Logger()
	w := &zerologWriter{log: log}
	in := `{"@level":"warn","@message":"slow answer","@module":"x","@timestamp":"2026-01-01T00:00:00.000000Z","took_ms":1200,"plugin":"/p/bin"}` + "\n" +
		`not json at all` + "\n" + `{"@level":"error","@message":"split`
	// Written in two pieces: a line split across writes is joined.
	if _, err := w.Write([]byte(in)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(` line"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		got = append(got, m)
	}
	if len(got) != 3 {
		t.Fatalf("got %d lines: %s", len(got), buf.String())
	}
	if got[0]["level"] != "warn" || got[0]["message"] != "slow answer" || got[0]["took_ms"] != 1200.0 ||
		got[0]["plugin"] != "ticket" || got[0]["plugin_path"] != "/p/bin" {
		t.Errorf("hclog line = %v", got[0])
	}
	if got[1]["level"] != "info" || got[1]["message"] != "not json at all" {
		t.Errorf("plain line = %v", got[1])
	}
	if got[2]["level"] != "error" || got[2]["message"] != "split line" {
		t.Errorf("split line = %v", got[2])
	}
	if strings.Count(buf.String(), `"plugin":`) != 3 {
		t.Errorf("duplicate plugin keys: %s", buf.String())
	}
}

func FuzzZerologWriter(f *testing.F) {
	f.Add([]byte(`{"@level":"info","@message":"m","k":[1,{"a":null}]}` + "\n"))
	f.Add([]byte("panic: boom\n\ngoroutine 1 [running]:\n"))
	f.Add([]byte(`{"@message":3,"@level":{}}` + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var buf bytes.Buffer
		w := &zerologWriter{log: zerolog.New(&buf)}
		if n, err := w.Write(b); err != nil || n != len(b) {
			t.Fatalf("Write = %d, %v", n, err)
		}
		for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			if line != "" && !json.Valid([]byte(line)) {
				t.Fatalf("invalid log line %q", line)
			}
		}
	})
}

// Source plugins are found by their own prefix, with the same rules as
// action plugins and messages that say "source plugin".
func TestDiscoverSources(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	touch(t, filepath.Join(a, "rulebook-source-feed"), 0o755)
	touch(t, filepath.Join(a, "rulebook-plugin-ticket"), 0o755) // an action plugin
	touch(t, filepath.Join(a, "rulebook-source-notexec"), 0o644)
	touch(t, filepath.Join(b, "rulebook-source-feed"), 0o755) // shadowed by a's
	declaredPath := filepath.Join(t.TempDir(), "rulebook-source-pinned.exe")
	cands, warnings, err := discoverSources([]string{a, b}, []Declared{{Path: declaredPath, SHA256: strings.Repeat("AB", 32)}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cands {
		got = append(got, c.name+"="+c.path+"/"+c.checksum)
	}
	want := []string{"pinned=" + declaredPath + "/" + strings.Repeat("ab", 32), "feed=" + filepath.Join(a, "rulebook-source-feed") + "/"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("candidates %v, want %v", got, want)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], `source plugin "feed" at `) || !strings.Contains(warnings[0], "shadowed") {
		t.Fatalf("warnings %v", warnings)
	}
	for _, tc := range []struct {
		declared []Declared
		want     string
	}{
		{[]Declared{{Name: "x"}}, `declared source plugin "x": path is empty`},
		{[]Declared{{Path: declaredPath, SHA256: "abc"}}, `declared source plugin "pinned": sha256 "abc" is not 64 hex digits`},
		{[]Declared{{Name: "x", Path: declaredPath}, {Name: "x", Path: declaredPath + "2"}}, `source plugin "x" is declared twice`},
	} {
		if _, _, err := discoverSources(nil, tc.declared); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.declared, err, tc.want)
		}
	}
}
