package journal

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
)

const crashDirEnv = "JOURNAL_CRASH_TEST_DIR"

// TestHelperProcess is the child of TestCrashKeepsAcknowledged: it emits
// from several goroutines and prints "ack <event id>" for every event whose
// Emit returned, until it is killed.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for TestCrashKeepsAcknowledged")
	}
	s, err := Open(Options{Dir: dir, Log: zerolog.Nop()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	var out sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				id := fmt.Sprintf("w%d-%d", w, i)
				e := engine.Entry{
					Event:     engine.Event{"payload": strings.Repeat("x", 1000), "meta": map[string]any{"uuid": id}},
					DedupeKey: id,
				}
				if _, err := s.Emit(context.Background(), srcA, []engine.Entry{e}); err != nil {
					fmt.Fprintln(os.Stderr, "emit:", err)
					os.Exit(2)
				}
				out.Lock()
				fmt.Fprintf(os.Stdout, "ack %s\n", id)
				out.Unlock()
				if i%50 == 0 {
					// Keep some records done, as a running engine would.
					if err := s.Done(context.Background(), s.LastSeq()/2); err != nil {
						fmt.Fprintln(os.Stderr, "done:", err)
						os.Exit(2)
					}
				}
			}
		}()
	}
	wg.Wait()
}

func TestCrashKeepsAcknowledged(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const killAfter = 400
	acked := map[string]bool{}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	deadline := time.After(60 * time.Second)
	killed := false
	for done := false; !done; {
		select {
		case line, ok := <-lines:
			if !ok {
				done = true
				break
			}
			id, found := strings.CutPrefix(line, "ack ")
			if !found {
				continue // the test framework's own output
			}
			acked[id] = true
			if len(acked) == killAfter && !killed {
				// While the child runs, its store is locked against this process.
				if s, err := Open(Options{Dir: dir, Log: zerolog.Nop()}); !errors.Is(err, ErrInUse) {
					if err == nil {
						_ = s.Close()
					}
					t.Errorf("open while the child runs: %v, want ErrInUse", err)
				}
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		case <-deadline:
			_ = cmd.Process.Kill()
			t.Fatalf("child acknowledged %d events within the deadline, want %d; stderr: %s", len(acked), killAfter, stderr.String())
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended before it was killed: %v; stderr: %s", err, stderr.String())
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v; stderr: %s", err, stderr.String())
	}

	s := openTest(t, dir, nil, nil)
	stored := map[string]int{}
	recs := readAll(t, s, 0)
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d: not contiguous", i, r.Seq)
		}
		stored[engine.EventID(r.Event)]++
	}
	for id := range acked {
		if stored[id] != 1 {
			t.Errorf("acknowledged event %s stored %d times, want once", id, stored[id])
		}
	}
	done, _ := s.LastDone(context.Background())
	if done > s.LastSeq() {
		t.Fatalf("last done %d beyond last seq %d", done, s.LastSeq())
	}
	t.Logf("%d acknowledged before the kill, %d stored, last done %d", len(acked), len(recs), done)
	// The recovered dedupe state knows every acknowledged key.
	var again []engine.Entry
	for id := range acked {
		again = append(again, engine.Entry{DedupeKey: id})
	}
	out := emit(t, s, srcA, again...)
	for i, o := range out {
		if o != engine.Duplicate {
			t.Fatalf("re-delivery of %s after the crash: %v, want duplicate", again[i].DedupeKey, o)
		}
	}
}
