package python

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

func touch(t *testing.T, path string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("async def main(queue, args):\n    pass\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestFind(t *testing.T) {
	root := t.TempDir()
	srcDir := filepath.Join(root, "sources")
	local := touch(t, filepath.Join(srcDir, "alerts.py"))
	touch(t, filepath.Join(srcDir, "range.py"))
	userColls := filepath.Join(root, "user")
	sysColls := filepath.Join(root, "sys", "ansible_collections") // given as the ansible_collections dir itself
	event := filepath.Join("extensions", "eda", "plugins", "event_source")
	userTicks := touch(t, filepath.Join(userColls, "ansible_collections", "acme", "ops", event, "ticks.py"))
	touch(t, filepath.Join(sysColls, "acme", "ops", event, "ticks.py")) // shadowed by the user's
	sysOnly := touch(t, filepath.Join(sysColls, "acme", "ops", event, "beats.py"))
	edaURL := touch(t, filepath.Join(sysColls, "ansible", "eda", event, "url_check.py"))
	oldLayout := touch(t, filepath.Join(sysColls, "acme", "old", "plugins", "event_source", "legacy.py"))
	if err := os.MkdirAll(filepath.Join(srcDir, "dir.py"), 0o755); err != nil {
		t.Fatal(err)
	}

	f := &Finder{SourceDirs: []string{filepath.Join(root, "missing"), srcDir}, CollectionPaths: []string{userColls, sysColls}}
	for _, tc := range []struct {
		name, want string
	}{
		{"alerts", local},
		{"acme.ops.ticks", userTicks},
		{"acme.ops.beats", sysOnly},
		{"url_check", edaURL},          // the loader reads ansible.eda.url_check as url_check
		{"acme.old.legacy", oldLayout}, // plugins/event_source, as ansible-rulebook also reads
		{"acme.ops.nothing", ""},
		{"nothing", ""},
		{"dir", ""}, // a directory is no plugin
		{"acme.ops", ""},
		{"a.b.c.d", ""},
		{"../sources/alerts", ""},
		{"acme..ticks", ""},
		{"acme.ops.ticks/../../x", ""},
	} {
		got, ok := f.Find(tc.name)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("Find(%q) = %q, %v; want %q", tc.name, got, ok, tc.want)
		}
	}
	spec, ok := f.Resolve("acme.ops.ticks")
	if !ok || spec.Type != "acme.ops.ticks" || spec.New == nil {
		t.Fatalf("Resolve: %+v %v", spec, ok)
	}
	// A collection plugin imports its collection's modules through
	// ansible_collections: the directory holding it is on sys.path.
	if got, want := f.syspath(userTicks), []string{filepath.Dir(userTicks), userColls}; !reflect.DeepEqual(got, want) {
		t.Fatalf("syspath %v, want %v", got, want)
	}
	if got, want := f.syspath(local), []string{srcDir}; !reflect.DeepEqual(got, want) {
		t.Fatalf("syspath %v, want %v", got, want)
	}
}

func TestCollectionPaths(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"default", map[string]string{"HOME": "/home/op"}, []string{"/home/op/.ansible/collections", "/usr/share/ansible/collections"}},
		{"ANSIBLE_COLLECTIONS_PATH", map[string]string{"HOME": "/home/op", "ANSIBLE_COLLECTIONS_PATH": "~/colls:/opt/colls:", "ANSIBLE_COLLECTIONS_PATHS": "/old"},
			[]string{"/home/op/colls", "/opt/colls"}},
		{"the older ANSIBLE_COLLECTIONS_PATHS", map[string]string{"ANSIBLE_COLLECTIONS_PATHS": "/old"}, []string{"/old"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := CollectionPaths(func(k string) string { return tc.env[k] })
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("%v, want %v", got, tc.want)
			}
		})
	}
}

// A collection that is not in the collections paths is where
// ansible-galaxy says it is, as ansible-rulebook asks.
func TestFindAsksAnsibleGalaxy(t *testing.T) {
	if _, err := exec.LookPath("ansible-galaxy"); err != nil {
		t.Skip("ansible-galaxy is not installed (test/setup.sh installs ansible-core)")
	}
	root := t.TempDir()
	coll := filepath.Join(root, "ansible_collections", "acme", "pip")
	if err := os.MkdirAll(coll, 0o755); err != nil {
		t.Fatal(err)
	}
	manifest := `{"collection_info": {"namespace": "acme", "name": "pip", "version": "1.0.0"}}`
	if err := os.WriteFile(filepath.Join(coll, "MANIFEST.json"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	want := touch(t, filepath.Join(coll, "extensions", "eda", "plugins", "event_source", "probe.py"))
	t.Setenv("ANSIBLE_COLLECTIONS_PATH", root) // seen by ansible-galaxy only
	f := &Finder{Galaxy: "ansible-galaxy"}
	if got, ok := f.Find("acme.pip.probe"); !ok || got != want {
		t.Fatalf("Find = %q, %v; want %q", got, ok, want)
	}
	if _, ok := f.Find("acme.pip.nothing"); ok {
		t.Fatal("found a plugin the collection does not have")
	}
	if _, ok := (&Finder{}).Find("acme.pip.probe"); ok {
		t.Fatal("found without asking ansible-galaxy")
	}
}
