package ticket

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// StoreFile is the name of the correlation file in the state directory.
const StoreFile = "tickets.json"

// record is one open ticket remembered for a correlation key.
type record struct {
	System string    `json:"system"`
	Ref    ref       `json:"ref"`
	Opened time.Time `json:"opened"`
}

// store keeps correlation key -> open ticket in a small JSON file, written
// atomically (temp file, fsync, rename). With no directory it keeps the
// map in memory only; the markers in the tickets themselves still let a
// later open find them through the systems' search APIs.
type store struct {
	path string

	mu      sync.Mutex
	loaded  bool
	records map[string]record
}

func newStore(dir string) *store {
	s := &store{records: map[string]record{}}
	if dir != "" {
		s.path = filepath.Join(dir, StoreFile)
	}
	return s
}

func (s *store) load() error {
	if s.loaded {
		return nil
	}
	if s.path != "" {
		b, err := os.ReadFile(s.path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return fmt.Errorf("ticket state %q: %w", s.path, err)
		default:
			var doc struct {
				Tickets map[string]record `json:"tickets"`
			}
			if err := json.Unmarshal(b, &doc); err != nil {
				// Every ticket carries its key, so searches rebuild the
				// map: start empty and let the next save replace the
				// file, rather than fail every save from now on.
				s.loaded = true
				return fmt.Errorf("ticket state %q is corrupt, starting empty: %w", s.path, err)
			}
			if doc.Tickets != nil {
				s.records = doc.Tickets
			}
		}
	}
	s.loaded = true
	return nil
}

func (s *store) get(key string) (record, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.load(); err != nil {
		return record{}, false, err
	}
	r, ok := s.records[key]
	return r, ok, nil
}

func (s *store) put(key string, r record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.load(); err != nil {
		return err
	}
	s.records[key] = r
	return s.saveLocked()
}

func (s *store) remove(key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.load(); err != nil {
		return err
	}
	if _, ok := s.records[key]; !ok {
		return nil
	}
	delete(s.records, key)
	return s.saveLocked()
}

func (s *store) saveLocked() error {
	if s.path == "" {
		return nil
	}
	b, err := json.MarshalIndent(struct {
		Tickets map[string]record `json:"tickets"`
	}{s.records}, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("ticket state dir: %w", err)
	}
	f, err := os.CreateTemp(dir, ".tickets-*.json")
	if err != nil {
		return fmt.Errorf("ticket state: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("ticket state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("ticket state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("ticket state: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("ticket state: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// keyLocks serializes work on one correlation key, so two notifications of
// the same alert arriving together open one ticket, not two.
type keyLocks struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	ch   chan struct{}
	refs int
}

func (k *keyLocks) lock(key string, done <-chan struct{}) bool {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	select {
	case l.ch <- struct{}{}:
		return true
	case <-done:
		k.release(key, l)
		return false
	}
}

func (k *keyLocks) unlock(key string) {
	k.mu.Lock()
	l := k.locks[key]
	k.mu.Unlock()
	<-l.ch
	k.release(key, l)
}

func (k *keyLocks) release(key string, l *keyLock) {
	k.mu.Lock()
	l.refs--
	if l.refs == 0 {
		delete(k.locks, key)
	}
	k.mu.Unlock()
}
