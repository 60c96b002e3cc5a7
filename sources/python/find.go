package python

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

// pluginSubdirs are where a collection keeps its event source plugins, in
// the order ansible-rulebook looks.
var pluginSubdirs = []string{
	filepath.Join("extensions", "eda", "plugins", "event_source"),
	filepath.Join("extensions", "eda", "plugins", "event_sources"),
	filepath.Join("plugins", "event_source"),
}

// namePart is one part of a plugin name: a Python identifier, so that a
// name can never walk out of a directory.
var namePart = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Finder finds EDA Python source plugins by the name a rulebook gives them,
// as ansible-rulebook does: a plain name NAME is NAME.py in one of
// SourceDirs (--source-dir), else a plugin of the ansible.eda collection; a
// name NAMESPACE.COLLECTION.NAME is NAME.py in that collection's
// extensions/eda/plugins/event_source under one of CollectionPaths, or,
// failing that, where `ansible-galaxy collection list` says the collection
// is (a collection installed with pip, in a path of ansible.cfg), as
// ansible-rulebook asks.
type Finder struct {
	SourceDirs      []string
	CollectionPaths []string
	// Python is the interpreter that runs the plugins ("" is python3, from
	// PATH).
	Python string
	// Galaxy is the ansible-galaxy program asked about collections not
	// found in CollectionPaths ("" asks none).
	Galaxy string

	mu     sync.Mutex
	galaxy map[string]string // collection -> its directory ("" not found)
}

// Find returns the plugin file of a source name.
func (f *Finder) Find(name string) (string, bool) {
	parts := strings.Split(name, ".")
	for _, p := range parts {
		if !namePart.MatchString(p) {
			return "", false
		}
	}
	switch len(parts) {
	case 1:
		for _, d := range f.SourceDirs {
			if p := filepath.Join(d, name+".py"); isFile(p) {
				return p, true
			}
		}
		// The loader reads ansible.eda.NAME as NAME.
		return f.inCollection("ansible", "eda", name)
	case 3:
		return f.inCollection(parts[0], parts[1], parts[2])
	}
	return "", false
}

func (f *Finder) inCollection(ns, coll, name string) (string, bool) {
	for _, root := range f.CollectionPaths {
		if filepath.Base(root) != "ansible_collections" {
			root = filepath.Join(root, "ansible_collections")
		}
		if p, ok := pluginIn(filepath.Join(root, ns, coll), name); ok {
			return p, true
		}
	}
	if dir := f.galaxyDir(ns + "." + coll); dir != "" {
		return pluginIn(dir, name)
	}
	return "", false
}

func pluginIn(collDir, name string) (string, bool) {
	for _, sub := range pluginSubdirs {
		if p := filepath.Join(collDir, sub, name+".py"); isFile(p) {
			return p, true
		}
	}
	return "", false
}

// galaxyTimeout bounds one `ansible-galaxy collection list`.
const galaxyTimeout = 30 * time.Second

// galaxyDir asks ansible-galaxy where a collection is installed, once per
// collection.
func (f *Finder) galaxyDir(collection string) string {
	if f.Galaxy == "" {
		return ""
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if dir, ok := f.galaxy[collection]; ok {
		return dir
	}
	if f.galaxy == nil {
		f.galaxy = map[string]string{}
	}
	f.galaxy[collection] = ""
	bin, err := exec.LookPath(f.Galaxy)
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), galaxyTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "collection", "list", collection)
	cmd.Env = append(os.Environ(), "ANSIBLE_LOCAL_TEMP="+os.TempDir())
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	// Each search path is a line "# /path/to/ansible_collections".
	parts := strings.Split(collection, ".")
	for _, line := range strings.Split(string(out), "\n") {
		loc, ok := strings.CutPrefix(strings.TrimSpace(line), "# ")
		if !ok {
			continue
		}
		dir := filepath.Join(append([]string{loc}, parts...)...)
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			f.galaxy[collection] = dir
			return dir
		}
	}
	return ""
}

// Resolve is an engine.Registry source resolver: the spec of a plugin found
// by name.
func (f *Finder) Resolve(name string) (engine.SourceSpec, bool) {
	path, ok := f.Find(name)
	if !ok {
		return engine.SourceSpec{}, false
	}
	return Spec(name, path, f.Python, f.syspath(path)), true
}

// syspath is what the runner puts in front of sys.path for a plugin: the
// plugin's own directory (its helper modules) and, for a collection plugin,
// the directory holding ansible_collections, so that
// `from ansible_collections.ns.coll...` imports work.
func (f *Finder) syspath(path string) []string {
	out := []string{filepath.Dir(path)}
	dir := path
	for {
		parent := filepath.Dir(dir)
		if parent == dir {
			return out
		}
		if filepath.Base(parent) == "ansible_collections" {
			return append(out, filepath.Dir(parent))
		}
		dir = parent
	}
}

// CollectionPaths returns Ansible's collection search path: the entries of
// ANSIBLE_COLLECTIONS_PATH (or the older ANSIBLE_COLLECTIONS_PATHS) when
// set, else ~/.ansible/collections and /usr/share/ansible/collections.
// getenv is os.Getenv in production.
func CollectionPaths(getenv func(string) string) []string {
	v := getenv("ANSIBLE_COLLECTIONS_PATH")
	if v == "" {
		v = getenv("ANSIBLE_COLLECTIONS_PATHS")
	}
	var out []string
	if v != "" {
		for _, p := range filepath.SplitList(v) {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, expandHome(p, getenv))
			}
		}
		return out
	}
	if home := getenv("HOME"); home != "" {
		out = append(out, filepath.Join(home, ".ansible", "collections"))
	}
	return append(out, "/usr/share/ansible/collections")
}

func expandHome(p string, getenv func(string) string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home := getenv("HOME"); home != "" {
			return filepath.Join(home, strings.TrimPrefix(p, "~"))
		}
	}
	return p
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
