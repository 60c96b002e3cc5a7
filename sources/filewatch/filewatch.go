// Package filewatch is the `file_watch` source: it watches a directory
// (optionally its whole tree) with inotify and emits one event per change,
// shaped as ansible.eda.file_watch shapes them:
//
//	{"change": "created", "src_path": "/dir/f", "type": "FileCreatedEvent", "root_path": "/dir"}
//
// change is created, modified, deleted or moved (for the old name; the new
// name is created); type is watchdog's class name (FileCreatedEvent,
// DirDeletedEvent, ...).
package filewatch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"

	"github.com/fsnotify/fsnotify"

	"github.com/rulebook-dev/rulebook/engine"
)

// Type is the source's key in rulebooks.
const Type = "file_watch"

// Spec registers the source.
func Spec() engine.SourceSpec {
	return engine.SourceSpec{
		Type:        Type,
		Description: "emits an event for every file created, modified, deleted or moved under path",
		Check:       func(args map[string]any) error { _, err := parse(args); return err },
		PathArgs:    []string{"path"},
		New: func(cfg engine.SourceConfig) (engine.Source, error) {
			w, err := parse(cfg.Args)
			if err != nil {
				return nil, err
			}
			w.ref = engine.SourceRef{Ruleset: cfg.Ruleset, Name: cfg.Name, Type: cfg.Type}
			w.clock = cfg.Clock
			return w, nil
		},
		Schema: map[string]any{
			"type": "object", "additionalProperties": false, "required": []any{"path"},
			"properties": map[string]any{
				"path":           map[string]any{"type": "string", "description": "directory to watch"},
				"recursive":      map[string]any{"type": "boolean", "description": "watch the whole tree (default false)"},
				"ignore_regexes": map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "description": "paths matching one of these (Go regular expressions) are ignored"},
			},
		},
	}
}

// Watch is a running file_watch source.
type Watch struct {
	root      string
	recursive bool
	ignore    []*regexp.Regexp
	ref       engine.SourceRef
	clock     engine.Clock

	mu   sync.Mutex
	dirs map[string]bool // watched directories, to name deleted ones
}

var _ engine.Source = (*Watch)(nil)

func parse(args map[string]any) (*Watch, error) {
	w := &Watch{dirs: map[string]bool{}}
	for k, v := range args {
		switch k {
		case "path":
			s, ok := v.(string)
			if !ok || s == "" {
				return nil, engine.ArgErrorf([]string{k}, "want a directory")
			}
			w.root = filepath.Clean(s)
		case "recursive":
			b, ok := v.(bool)
			if !ok {
				return nil, engine.ArgErrorf([]string{k}, "want true or false, got %v", v)
			}
			w.recursive = b
		case "ignore_regexes":
			list, ok := v.([]any)
			if !ok {
				return nil, engine.ArgErrorf([]string{k}, "want a list of regular expressions")
			}
			for i, x := range list {
				s, ok := x.(string)
				if !ok {
					return nil, engine.ArgErrorf([]string{k, fmt.Sprint(i)}, "want a regular expression (a string), got %s", engine.TypeName(x))
				}
				re, err := regexp.Compile(s)
				if err != nil {
					return nil, engine.ArgErrorf([]string{k, fmt.Sprint(i)}, "invalid regular expression %q: %v", s, err)
				}
				w.ignore = append(w.ignore, re)
			}
		default:
			return nil, engine.ArgErrorf([]string{k}, "unknown key %q (want path, recursive, ignore_regexes)", k)
		}
	}
	if w.root == "" {
		return nil, engine.ArgErrorf(nil, "missing key \"path\"")
	}
	return w, nil
}

// Run watches until ctx ends. A path that is not a directory, or an
// inotify failure, is an error.
func (w *Watch) Run(ctx context.Context, out engine.Emitter) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("file_watch: %w", err)
	}
	defer fw.Close()
	if st, err := os.Stat(w.root); err != nil || !st.IsDir() {
		return fmt.Errorf("file_watch: path %q is not a directory", w.root)
	}
	if err := w.add(fw, w.root); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err, ok := <-fw.Errors:
			if !ok {
				return nil
			}
			return fmt.Errorf("file_watch: %w", err)
		case ev, ok := <-fw.Events:
			if !ok {
				return nil
			}
			if err := w.handle(ctx, fw, ev, out); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
}

// add watches dir, and with recursive its subdirectories.
func (w *Watch) add(fw *fsnotify.Watcher, dir string) error {
	walk := func(p string) error {
		if err := fw.Add(p); err != nil {
			return fmt.Errorf("file_watch: watch %q: %w", p, err)
		}
		w.mu.Lock()
		w.dirs[p] = true
		w.mu.Unlock()
		return nil
	}
	if !w.recursive {
		return walk(dir)
	}
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return walk(p)
		}
		return nil
	})
}

func (w *Watch) handle(ctx context.Context, fw *fsnotify.Watcher, ev fsnotify.Event, out engine.Emitter) error {
	for _, re := range w.ignore {
		if re.MatchString(ev.Name) {
			return nil
		}
	}
	var change string
	switch {
	case ev.Has(fsnotify.Create):
		change = "created"
	case ev.Has(fsnotify.Remove):
		change = "deleted"
	case ev.Has(fsnotify.Rename):
		change = "moved"
	case ev.Has(fsnotify.Write), ev.Has(fsnotify.Chmod):
		change = "modified"
	default:
		return nil
	}
	isDir := false
	if st, err := os.Stat(ev.Name); err == nil {
		isDir = st.IsDir()
	} else {
		w.mu.Lock()
		isDir = w.dirs[ev.Name]
		w.mu.Unlock()
	}
	if change == "deleted" || change == "moved" {
		w.mu.Lock()
		delete(w.dirs, ev.Name)
		w.mu.Unlock()
	}
	if change == "created" && isDir && w.recursive {
		if err := w.add(fw, ev.Name); err != nil {
			return err
		}
	}
	kind := "File"
	if isDir {
		kind = "Dir"
	}
	cls := map[string]string{"created": "CreatedEvent", "deleted": "DeletedEvent", "moved": "MovedEvent", "modified": "ModifiedEvent"}[change]
	body := map[string]any{"change": change, "src_path": ev.Name, "type": kind + cls, "root_path": w.root}
	e := engine.NewEvent(body, w.ref.Name, w.ref.Type, w.clock.Now())
	_, err := engine.EmitWait(ctx, w.clock, out, w.ref, []engine.Entry{{Event: e}})
	return err
}
