package procgroup

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The daemon keeps an attempt's records in one file, <base>.rec: the pid
// record, JSON padded with spaces to a fixed size, a newline, then, once
// the program ended, the exit record. It writes the file once before the
// fork and then only in place (pwrite): the pid once the program started,
// the exit record once it ended. A file created and then rewritten in
// place costs one create and one unlink per command; truncating and
// rewriting a file makes ext4 flush it on close (auto_da_alloc), and a
// file of its own for the exit record costs a create and an unlink more,
// each a noticeable part of a command's budget.
//
// The per-command supervisor of earlier versions wrote <base>.pid and
// <base>.exit; Reattach, Prune and Notes still read them.
const (
	recSuffix  = ".rec"
	pidSuffix  = ".pid"  // earlier versions
	exitSuffix = ".exit" // earlier versions
)

// pidSlack is room left in a pending record for the program's pid and
// start time, so that the rewrite keeps its size.
const pidSlack = 48

// recordFile is an attempt's record file, open in the daemon.
type recordFile struct {
	f    *os.File
	path string
	slot int // size of the pid record's slot, newline included
}

// createRecord writes the pending record pr to path, not synced (see
// daemon.launch), and keeps the file open for the rewrites.
func createRecord(path string, pr pidRecord) (*recordFile, error) {
	b, err := json.Marshal(pr)
	if err != nil {
		return nil, err
	}
	b = append(b, bytes.Repeat([]byte{' '}, pidSlack)...)
	b = append(b, '\n')
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, err
	}
	return &recordFile{f: f, path: path, slot: len(b)}, nil
}

// setPid rewrites the pid record, in place.
func (r *recordFile) setPid(pr pidRecord) error {
	b, err := json.Marshal(pr)
	if err != nil {
		return err
	}
	if len(b) > r.slot-1 {
		return fmt.Errorf("pid record of %d bytes in a slot of %d", len(b), r.slot-1)
	}
	b = append(b, bytes.Repeat([]byte{' '}, r.slot-1-len(b))...)
	_, err = r.f.WriteAt(b, 0)
	return err
}

// setExit writes the exit record after the pid record; with sync, it then
// fsyncs the file and its directory, so the record survives a power loss.
func (r *recordFile) setExit(rec exitRecord, sync bool) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if _, err := r.f.WriteAt(b, int64(r.slot)); err != nil {
		return err
	}
	if !sync {
		return nil
	}
	if err := r.f.Sync(); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(r.path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (r *recordFile) Close() error { return r.f.Close() }

// attempt is what the records of one attempt say.
type attempt struct {
	pid      pidRecord
	havePid  bool
	exit     exitRecord
	haveExit bool
	// found: a record file of the attempt exists.
	found bool
}

// readAttempt reads the records of the attempt at base (a path without
// suffix), in either format. A read may straddle one of the daemon's
// in-place writes: a record that does not parse is read again.
func readAttempt(base string) attempt {
	var a attempt
	for try := 0; ; try++ {
		a = attempt{}
		b, err := os.ReadFile(base + recSuffix)
		if errors.Is(err, os.ErrNotExist) {
			return readOldAttempt(base)
		}
		if err != nil {
			return a
		}
		a.found = true
		pidPart, exitPart, _ := bytes.Cut(b, []byte{'\n'})
		perr := json.Unmarshal(pidPart, &a.pid)
		a.havePid = perr == nil
		var eerr error
		if exitPart = bytes.TrimSpace(exitPart); len(exitPart) > 0 {
			eerr = json.Unmarshal(exitPart, &a.exit)
			a.haveExit = eerr == nil
		}
		if perr == nil && eerr == nil || try == 4 {
			return a
		}
		time.Sleep(time.Millisecond)
	}
}

// readOldAttempt reads the records of a per-command supervisor.
func readOldAttempt(base string) attempt {
	var a attempt
	_, perr := os.Stat(base + pidSuffix)
	_, eerr := os.Stat(base + exitSuffix)
	a.found = perr == nil || eerr == nil
	a.havePid = readJSON(base+pidSuffix, &a.pid) == nil
	a.haveExit = readJSON(base+exitSuffix, &a.exit) == nil
	return a
}

// exited reports whether the exit record of the attempt at base is there.
func exited(base string) bool {
	a := readAttempt(base)
	return a.haveExit
}

// removeAttempt removes the records of the attempt at base.
func removeAttempt(base string) {
	_ = os.Remove(base + recSuffix)
	_ = os.Remove(base + pidSuffix)
	_ = os.Remove(base + exitSuffix)
}

// recordBases maps the record files among entries to their base names
// (without suffix) and those to the invocation's file id.
func recordBases(entries []os.DirEntry) map[string]string {
	bases := map[string]string{}
	for _, e := range entries {
		name := e.Name()
		var base string
		for _, suffix := range []string{recSuffix, pidSuffix, exitSuffix} {
			if b, ok := strings.CutSuffix(name, suffix); ok {
				base = b
				break
			}
		}
		if base == "" {
			continue
		}
		if fid, _, ok := strings.Cut(base, "."); ok {
			bases[base] = fid
		}
	}
	return bases
}
