package plugins

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// FilePrefix starts the file name of every discoverable plugin binary:
// rulebook-plugin-NAME (rulebook-plugin-NAME.exe on Windows).
const FilePrefix = "rulebook-plugin-"

// Declared is a plugin named explicitly (in a rulebook or on the command
// line) rather than found in a directory.
type Declared struct {
	// Name is the plugin's name; empty derives it from the file name.
	Name string
	// Path is the executable.
	Path string
	// SHA256 is the expected checksum of the executable, hex encoded. When
	// set, a file whose checksum differs is refused.
	SHA256 string
}

// candidate is a plugin binary to start.
type candidate struct {
	name     string
	path     string
	checksum string // declared, lower-case hex; "" when none
	declared bool
}

// DefaultDirs returns the directories searched when no --plugins-dir is
// given: a "plugins" folder beside each rulebook and one beside the
// executable. Duplicates are removed; order is kept.
func DefaultDirs(rulebooks []string, executable string) []string {
	var dirs []string
	seen := map[string]bool{}
	add := func(d string) {
		if abs, err := filepath.Abs(d); err == nil {
			d = abs
		}
		if !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	for _, rb := range rulebooks {
		add(filepath.Join(filepath.Dir(rb), "plugins"))
	}
	if executable != "" {
		add(filepath.Join(filepath.Dir(executable), "plugins"))
	}
	return dirs
}

// NameFromPath derives a plugin's name from its file name:
// ".../rulebook-plugin-ticket" is "ticket". Other file names are used whole
// (without a ".exe").
func NameFromPath(path string) string { return actionPlugins.nameFromPath(path) }

// pluginKind is what discovery looks for: the file name prefix of the
// plugins of a kind, and the noun its messages name them by.
type pluginKind struct{ prefix, noun string }

var (
	actionPlugins = pluginKind{prefix: FilePrefix, noun: "plugin"}
	sourcePlugins = pluginKind{prefix: SourceFilePrefix, noun: "source plugin"}
)

func (k pluginKind) nameFromPath(path string) string {
	return strings.TrimPrefix(strings.TrimSuffix(filepath.Base(path), ".exe"), k.prefix)
}

// discover lists the declared action plugins followed by the plugin
// binaries in dirs.
func discover(dirs []string, declared []Declared) ([]candidate, []string, error) {
	return actionPlugins.discover(dirs, declared)
}

// discover lists the declared plugins followed by the plugin binaries of
// kind k in dirs. A directory that does not exist is skipped (the defaults
// often do not); one that cannot be read is an error. The first plugin of
// a name wins; declared plugins win over discovered ones. Shadowed plugins
// are returned as warnings.
func (k pluginKind) discover(dirs []string, declared []Declared) ([]candidate, []string, error) {
	byName := map[string]int{}
	var out []candidate
	var warnings []string
	var errs []error

	for _, d := range declared {
		if d.Path == "" {
			errs = append(errs, fmt.Errorf("declared %s %q: path is empty", k.noun, d.Name))
			continue
		}
		name := d.Name
		if name == "" {
			name = k.nameFromPath(d.Path)
		}
		sum := strings.ToLower(strings.TrimSpace(d.SHA256))
		if sum != "" {
			if b, err := hex.DecodeString(sum); err != nil || len(b) != sha256.Size {
				errs = append(errs, fmt.Errorf("declared %s %q: sha256 %q is not 64 hex digits", k.noun, name, d.SHA256))
				continue
			}
		}
		if i, dup := byName[name]; dup {
			errs = append(errs, fmt.Errorf("%s %q is declared twice (%q and %q)", k.noun, name, out[i].path, d.Path))
			continue
		}
		byName[name] = len(out)
		out = append(out, candidate{name: name, path: d.Path, checksum: sum, declared: true})
	}

	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("plugins dir %q: %w", dir, err))
			continue
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), k.prefix) {
				continue
			}
			path := filepath.Join(dir, e.Name())
			if !isExecutable(path) {
				continue
			}
			name := k.nameFromPath(path)
			if name == "" {
				continue
			}
			if i, dup := byName[name]; dup {
				warnings = append(warnings, fmt.Sprintf("%s %q at %q is shadowed by %q", k.noun, name, path, out[i].path))
				continue
			}
			byName[name] = len(out)
			out = append(out, candidate{name: name, path: path})
		}
	}
	return out, warnings, errors.Join(errs...)
}

func isExecutable(path string) bool {
	st, err := os.Stat(path) // follows symlinks
	if err != nil || !st.Mode().IsRegular() {
		return false
	}
	if runtime.GOOS == "windows" {
		return strings.EqualFold(filepath.Ext(path), ".exe")
	}
	return st.Mode().Perm()&0o111 != 0
}

// FileSHA256 returns the hex SHA-256 of the file at path.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
