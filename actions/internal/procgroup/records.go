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

// An attempt's records are in one file, a slot <Dir>/slot.<process>-<n>.rec
// that the engine process reuses: the pid record (JSON padded with spaces,
// naming the invocation), a newline, then, once the program ended, the
// exit record. The daemon writes it in place (pwrite) for each attempt:
// the pending record before the fork, blanking what an earlier attempt
// left after it, the pid once the program started, the exit record once
// it ended. Release marks the slot free (a pid record {"free":true}) and
// the engine gives it to its next attempt: no file is created or removed
// on the path of a command, which on ext4 cost 50-180 µs each here, and
// truncating and rewriting a file would make ext4 flush it on close
// (auto_da_alloc). A slot of an earlier process is removed by Reattach or
// Prune once it has served.
//
// The per-command supervisor of earlier versions wrote <fid>.<n>.pid and
// <fid>.<n>.exit; Reattach, Prune and Notes still read them.
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

// openRecord writes the pending record pr to the slot at path, created
// when new, blanking what an earlier attempt left after it, in one write,
// not synced (see daemon.launch); the file stays open for the rewrites.
func openRecord(path string, pr pidRecord) (*recordFile, error) {
	b, err := json.Marshal(pr)
	if err != nil {
		return nil, err
	}
	b = append(b, bytes.Repeat([]byte{' '}, pidSlack)...)
	b = append(b, '\n')
	slot := len(b)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteAt(padToFile(f, b), 0); err != nil {
		_ = f.Close()
		_ = freeRecord(path)
		return nil, err
	}
	return &recordFile{f: f, path: path, slot: slot}, nil
}

// freeRecord marks the slot at path free: nothing of an attempt is read
// from it any more.
func freeRecord(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(padToFile(f, []byte(`{"free":true}`)), 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// padToFile returns b padded with spaces to the size of f, so that one
// write of it at offset 0 blanks what an earlier attempt left after it.
func padToFile(f *os.File, b []byte) []byte {
	if st, err := f.Stat(); err == nil && st.Size() > int64(len(b)) {
		b = append(b, bytes.Repeat([]byte{' '}, int(st.Size())-len(b))...)
	}
	return b
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
	// free: the file is a free slot (then it holds no attempt: found is
	// false).
	free bool
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
		if perr == nil && a.pid.Free {
			return attempt{free: true} // a free slot holds no attempt
		}
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

// recordBases maps the record files among entries, in dir, to their base
// names (without suffix) and those to the invocation's file id: a slot's
// from the record in it (a free slot is left out), an earlier version's
// from its name.
func recordBases(dir string, entries []os.DirEntry) map[string]string {
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
		if strings.HasPrefix(base, slotPrefix) {
			if a := readAttempt(filepath.Join(dir, base)); a.havePid && a.pid.ID != "" {
				bases[base] = fileID(a.pid.ID)
			}
			continue
		}
		if fid, _, ok := strings.Cut(base, "."); ok {
			bases[base] = fid
		}
	}
	return bases
}

// freeSlots returns the free slots among entries, in dir, of processes
// other than this one: what Prune removes.
func freeSlots(dir string, entries []os.DirEntry) []string {
	var out []string
	for _, e := range entries {
		name := e.Name()
		base, ok := strings.CutSuffix(name, recSuffix)
		if !ok || !strings.HasPrefix(base, slotPrefix) || ownRecord(base) {
			continue
		}
		if readAttempt(filepath.Join(dir, base)).free {
			out = append(out, filepath.Join(dir, name))
		}
	}
	return out
}
