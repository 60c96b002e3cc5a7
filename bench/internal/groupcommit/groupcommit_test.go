//go:build linux

package groupcommit

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestAppendThen checks that AppendThen's callback runs only once its body
// is in the log, and that bodies queued by AppendThen and Append are
// committed in the order they were queued.
func TestAppendThen(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "log")
	var want [][]byte
	errs := make(chan error, 100)
	for i := range 100 {
		body := fmt.Appendf(nil, `{"i":%d}`, i)
		want = append(want, body)
		if i%10 == 9 {
			if err := l.Append(body); err != nil {
				t.Fatal(err)
			}
			continue
		}
		rec := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
		rec = append(rec, body...)
		l.AppendThen(body, func(err error) {
			if err == nil {
				b, rerr := os.ReadFile(path)
				if rerr != nil {
					err = rerr
				} else if !bytes.Contains(b, rec) {
					err = fmt.Errorf("called back before %s was written", body)
				}
			}
			errs <- err
		})
	}
	for range 90 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		n := binary.BigEndian.Uint32(b)
		if got := b[4 : 4+n]; !bytes.Equal(got, w) {
			t.Fatalf("record %d is %q, want %q", i, got, w)
		}
		b = b[4+n:]
	}
}
