// Command load is the open-loop load generator of bench/actions.sh. It
// POSTs {"n": i} to a URL at a fixed rate, whatever the answers' latency
// (a request starts on its schedule, not when an earlier one returns),
// recording the wall-clock time of each send. The command each request
// runs (bench/actions/tiny) appends "i <start time>" to a file; once the
// load ends, load waits for every request's line (or a deadline) and
// prints the send-to-start latency percentiles.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	url := flag.String("url", "", "`URL` to POST to")
	rate := flag.Int("rate", 1000, "requests per second")
	dur := flag.Duration("duration", 20*time.Second, "how long to send")
	out := flag.String("out", "", "`file` the command appends its start lines to")
	wait := flag.Duration("wait", 30*time.Second, "how long to wait after the load for the commands to start")
	floor := flag.String("floor", "", "instead of a load, measure the floor: run this `program` -floor-n times in a row (fork, exec, wait), then fsync one byte -floor-n times in the -out file's directory")
	floorN := flag.Int("floor-n", 2000, "runs of the floor measurement")
	floorFsync := flag.Bool("floor-fsync", true, "with -floor, time the write+fsyncs too")
	flag.Parse()
	if *floor != "" {
		measureFloor(*floor, *out, *floorN, *floorFsync)
		return
	}
	if *url == "" || *out == "" || *rate <= 0 {
		fmt.Fprintln(os.Stderr, "load: -url and -out are required, -rate must be positive")
		os.Exit(2)
	}
	n := int(float64(*rate) * dur.Seconds())
	sent := make([]int64, n)
	client := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 1024, MaxIdleConns: 1024},
	}
	var failed, errs atomic.Int64
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(*rate)
	t0 := time.Now()
	for i := range n {
		if d := time.Until(t0.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := []byte(`{"n": ` + strconv.Itoa(i) + `}`)
			sent[i] = time.Now().UnixNano()
			resp, err := client.Post(*url, "application/json", bytes.NewReader(body))
			if err != nil {
				errs.Add(1)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				failed.Add(1)
			}
		}()
	}
	loadEnd := time.Now()
	wg.Wait()
	sendDur := loadEnd.Sub(t0)

	// Wait for the commands.
	deadline := loadEnd.Add(*wait)
	var starts map[int]int64
	for {
		starts = readStarts(*out, n)
		if len(starts) >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	lat := make([]float64, 0, len(starts))
	var last int64
	for i, ts := range starts {
		if sent[i] == 0 {
			continue
		}
		lat = append(lat, float64(ts-sent[i])/1e6)
		last = max(last, ts)
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return -1
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	after := 0.0
	if last > 0 {
		after = float64(last-loadEnd.UnixNano()) / 1e9
	}
	// The rate the commands ran at: all of them from the first send to
	// the last start (the send rate when they kept up).
	runRate := float64(len(lat)) / (sendDur.Seconds() + max(after, 0))
	fmt.Printf("sent=%d send_rate=%.0f started=%d run_rate=%.0f non2xx=%d errors=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f last_start_after_load_s=%.2f\n",
		n, float64(n)/sendDur.Seconds(), len(lat), runRate, failed.Load(), errs.Load(), pct(0.50), pct(0.99), pct(1), after)
}

// readStarts reads the "i start" lines of path, for i below n.
func readStarts(path string, n int) map[int]int64 {
	m := map[int]int64{}
	f, err := os.Open(path)
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		a, b, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		i, err1 := strconv.Atoi(a)
		ts, err2 := strconv.ParseInt(b, 10, 64)
		if err1 != nil || err2 != nil || i < 0 || i >= n {
			continue
		}
		if _, dup := m[i]; !dup {
			m[i] = ts
		}
	}
	return m
}

// measureFloor prints what one command costs with nothing around it: a
// fork, exec and wait of prog (wall time and the CPU of the child and of
// this process, user+sys), and, with fsync, one write+fsync of a byte in
// out's directory.
func measureFloor(prog, out string, n int, fsync bool) {
	cpu := func() time.Duration {
		var self, kids syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
		_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
		tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
		return tv(self.Utime) + tv(self.Stime) + tv(kids.Utime) + tv(kids.Stime)
	}
	// Without and with the output captured through a pipe, as every
	// runner that reports a command's output must (run_command does,
	// adnanh/webhook's CombinedOutput does).
	for _, capture := range []bool{false, true} {
		c0, t0 := cpu(), time.Now()
		for i := range n {
			cmd := exec.Command(prog, out, strconv.Itoa(i))
			var err error
			if capture {
				_, err = cmd.CombinedOutput()
			} else {
				err = cmd.Run()
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "load: floor:", err)
				os.Exit(1)
			}
		}
		wall, used := time.Since(t0), cpu()-c0
		what := "fork+exec+wait"
		if capture {
			what += ", output captured"
		}
		fmt.Printf("floor %s: %.0f commands/s, %.1f us wall, %.1f us cpu (user+sys) per command\n", what,
			float64(n)/wall.Seconds(), float64(wall.Microseconds())/float64(n), float64(used.Microseconds())/float64(n))
	}
	if !fsync {
		return
	}
	f, err := os.CreateTemp(filepath.Dir(out), "fsync")
	if err != nil {
		fmt.Fprintln(os.Stderr, "load: floor:", err)
		os.Exit(1)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	t0 := time.Now()
	for range n {
		if _, err := f.Write([]byte{'x'}); err != nil {
			fmt.Fprintln(os.Stderr, "load: floor:", err)
			os.Exit(1)
		}
		if err := f.Sync(); err != nil {
			fmt.Fprintln(os.Stderr, "load: floor:", err)
			os.Exit(1)
		}
	}
	wall := time.Since(t0)
	fmt.Printf("floor fsync: %.1f us per write+fsync of one byte\n", float64(wall.Microseconds())/float64(n))
}
