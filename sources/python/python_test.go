package python

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/internal/sourcetest"
)

// Plugins written as EDA's documentation and the ansible.eda collection
// write them: an async main(queue, args), a mock section under __main__.
const rangePlugin = `"""range.py: events with an increasing index i, like ansible.eda.range."""
import asyncio
from typing import Any, Dict


async def main(queue: asyncio.Queue, args: Dict[str, Any]):
    delay = args.get("delay", 0)
    for i in range(int(args["limit"])):
        await queue.put(dict(i=i))
        await asyncio.sleep(delay)


if __name__ == "__main__":
    class MockQueue:
        async def put(self, event):
            print(event)

    asyncio.run(main(MockQueue(), dict(limit=5)))
`

// filePlugin reads a file of JSON lines; an event may carry meta, as
// sources.rst allows.
const filePlugin = `import asyncio
import json
import logging

logger = logging.getLogger(__name__)


async def main(queue, args):
    path = args.get("path")
    if not path:
        raise ValueError("path is required")
    await queue.put("not a mapping")  # skipped, logged
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                await queue.put({"payload": json.loads(line), "meta": {"hosts": args.get("hosts", [])}})
    print("read", path)  # a print must not reach the event stream


if __name__ == "__main__":
    raise SystemExit("not run as __main__ by rulebook")
`

// raisingPlugin counts its runs in a file, puts one event, then raises.
const raisingPlugin = `import asyncio


async def main(queue, args):
    with open(args["runs"], "a") as f:
        f.write("run\n")
    await queue.put({"attempt": "one"})
    raise ValueError("boom: " + args["why"])
`

func needPython(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(DefaultPython); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 is not installed (test/setup.sh installs it)") // CI installs it (test/setup.sh): never skip there
		}
		t.Skip("python3 is not installed (test/setup.sh installs it)")
	}
}

func writePlugin(t testing.TB, dir, name, src string) string {
	t.Helper()
	p := filepath.Join(dir, name+".py")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// logBuffer collects zerolog JSON lines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newSource(t *testing.T, name, path string, args map[string]any, clock engine.Clock, log *logBuffer) engine.Source {
	t.Helper()
	zl := zerolog.New(log).With().Str("source", name).Logger()
	spec := Spec(name, path, "", []string{filepath.Dir(path)})
	if err := spec.Check(args); err != nil {
		t.Fatal(err)
	}
	src, err := spec.New(engine.SourceConfig{Name: name, Type: name, Ruleset: "rs", Args: args, Clock: clock, Log: zl})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// run starts src and returns its events and its result.
func run(ctx context.Context, src engine.Source) (sourcetest.Events, <-chan error) {
	events := make(sourcetest.Events)
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, events) }()
	return events, done
}

func next(t *testing.T, events sourcetest.Events) engine.Event {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(20 * time.Second):
		t.Fatal("no event from the plugin")
	}
	return nil
}

func TestRangePluginEventsThenEnd(t *testing.T) {
	t.Parallel()
	needPython(t)
	dir := t.TempDir()
	path := writePlugin(t, dir, "range", rangePlugin)
	var log logBuffer
	src := newSource(t, "numbers", path, map[string]any{"limit": 5}, engine.SystemClock{}, &log)
	events, done := run(context.Background(), src)
	for i := 0; i < 5; i++ {
		ev := next(t, events)
		if got, _ := ev["i"].(float64); got != float64(i) {
			t.Fatalf("event %d: %v", i, ev)
		}
		meta := engine.Meta(ev)
		if s, _ := meta["source"].(map[string]any); s["name"] != "numbers" || s["type"] != "numbers" {
			t.Fatalf("meta.source %v", meta["source"])
		}
		if engine.EventID(ev) == "" || meta["received_at"] == nil {
			t.Fatalf("meta lacks uuid or received_at: %v", meta)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("a plugin whose main returned ended with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the source did not end when main returned")
	}
	if strings.Contains(log.String(), "source plugin failed") {
		t.Fatalf("a plugin that returned was treated as failed:\n%s", log.String())
	}
}

func TestFilePluginKeepsMetaAndPrintsToTheLog(t *testing.T) {
	t.Parallel()
	needPython(t)
	dir := t.TempDir()
	path := writePlugin(t, dir, "jsonfile", filePlugin)
	data := filepath.Join(dir, "events.jsonl")
	if err := os.WriteFile(data, []byte("{\"host\": \"web1\", \"status\": \"down\"}\n\n{\"host\": \"web2\", \"status\": \"up\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var log logBuffer
	src := newSource(t, "jsonfile", path, map[string]any{"path": data, "hosts": []any{"web1"}}, engine.SystemClock{}, &log)
	events, done := run(context.Background(), src)
	first, second := next(t, events), next(t, events)
	if p, _ := first["payload"].(map[string]any); p["host"] != "web1" || p["status"] != "down" {
		t.Fatalf("first event %v", first)
	}
	if p, _ := second["payload"].(map[string]any); p["host"] != "web2" {
		t.Fatalf("second event %v", second)
	}
	if h := engine.EventHosts(first); len(h) != 1 || h[0] != "web1" {
		t.Fatalf("meta.hosts from the plugin not kept: %v", engine.Meta(first))
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The print went to the log with the source's name, not into an event.
	var found bool
	for _, l := range strings.Split(log.String(), "\n") {
		if strings.Contains(l, `"stderr":"read `+data) && strings.Contains(l, `"source":"jsonfile"`) {
			found = true
		}
	}
	if !found {
		t.Fatalf("the plugin's print is not logged with the source name:\n%s", log.String())
	}
	if !strings.Contains(log.String(), "a source event must be a mapping, got str") {
		t.Fatalf("a non-mapping event is not reported:\n%s", log.String())
	}
}

func TestRaisingPluginRestartsWithBackoff(t *testing.T) {
	t.Parallel()
	needPython(t)
	dir := t.TempDir()
	path := writePlugin(t, dir, "flaky", raisingPlugin)
	runs := filepath.Join(dir, "runs")
	clock := engine.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var log logBuffer
	src := newSource(t, "flaky", path, map[string]any{"runs": runs, "why": "disk full"}, clock, &log).(*Source)
	src.cfg.MinBackoff, src.cfg.MaxBackoff = time.Second, 4*time.Second
	ctx, cancel := context.WithCancel(context.Background())
	events, done := run(ctx, src)
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("stopped source returned %v", err)
		}
	}()
	countRuns := func() int {
		b, _ := os.ReadFile(runs)
		return strings.Count(string(b), "run\n")
	}
	waitBackoff := func() {
		t.Helper()
		bctx, bcancel := context.WithTimeout(ctx, 20*time.Second)
		defer bcancel()
		if err := clock.BlockUntil(bctx, 1); err != nil {
			t.Fatalf("no backoff timer after the failure: %v\n%s", err, log.String())
		}
	}
	// The event put before the exception is delivered.
	if ev := next(t, events); ev["attempt"] != "one" {
		t.Fatalf("event %v", ev)
	}
	for i, backoff := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		waitBackoff()
		if n := countRuns(); n != i+1 {
			t.Fatalf("before backoff %d: %d runs, want %d", i, n, i+1)
		}
		clock.Advance(backoff - time.Millisecond)
		if clock.Timers() != 1 || countRuns() != i+1 {
			t.Fatalf("restarted before the %s backoff was over", backoff)
		}
		clock.Advance(time.Millisecond)
		if ev := next(t, events); ev["attempt"] != "one" {
			t.Fatalf("event after restart %d: %v", i+1, ev)
		}
	}
	out := log.String()
	if !strings.Contains(out, `"message":"source plugin failed"`) || !strings.Contains(out, "ValueError: boom: disk full") {
		t.Fatalf("the failure is not logged with the exception:\n%s", out)
	}
	if !strings.Contains(out, `"stderr":"Traceback (most recent call last):"`) || !strings.Contains(out, `"source":"flaky"`) {
		t.Fatalf("the traceback is not logged with the source's name:\n%s", out)
	}
}

// A plugin that keeps putting events while nothing is journaled is held
// back: its queue fills and put waits, instead of events piling up in
// memory on either side.
func TestBackPressure(t *testing.T) {
	t.Parallel()
	needPython(t)
	dir := t.TempDir()
	marker := filepath.Join(dir, "full")
	path := writePlugin(t, dir, "flood", `import asyncio

async def main(queue, args):
    for i in range(5000):
        if queue.full():
            with open(args["marker"], "w") as f:
                f.write(str(i))
            args["marker"] = "/dev/null"
        await queue.put({"i": i, "pad": "x" * 8192})
`)
	var log logBuffer
	src := newSource(t, "flood", path, map[string]any{"marker": marker}, engine.SystemClock{}, &log).(*Source)
	src.cfg.QueueSize = 4
	ctx, cancel := context.WithCancel(context.Background())
	events, done := run(ctx, src)
	if ev := next(t, events); ev["i"] != float64(0) {
		t.Fatalf("first event %v", ev)
	}
	// Nothing more is read: the plugin must come to a full queue.
	var putsBeforeFull int
	sourcetest.WaitFor(t, "the plugin's queue to fill (else events are not held back)", func() bool {
		b, err := os.ReadFile(marker)
		if err != nil || len(b) == 0 {
			return false
		}
		putsBeforeFull, _ = strconv.Atoi(string(b))
		return true
	})
	// One event taken by the test, the rest in the pipe, the reader's
	// buffer, the writer's batch and the queue: a few dozen 8 KiB events.
	if putsBeforeFull > 64 {
		t.Fatalf("%d events were taken from the plugin while one was journaled", putsBeforeFull)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the source did not stop")
	}
}

// A plugin that cannot load, or whose process dies, is a source error:
// logged, then restarted after a backoff.
// A plugin written for EDA's unbounded queue that calls put_nowait (from a
// thread callback, as watchdog-style plugins do) loses nothing.
func TestPutNowaitOverTheBound(t *testing.T) {
	t.Parallel()
	needPython(t)
	dir := t.TempDir()
	path := writePlugin(t, dir, "burst", `import asyncio, threading

async def main(queue, args):
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def watcher():
        for i in range(300):
            loop.call_soon_threadsafe(queue.put_nowait, {"i": i})
        loop.call_soon_threadsafe(done.set)

    threading.Thread(target=watcher).start()
    await done.wait()
    for i in range(300, 310):
        queue.put_nowait({"i": i})
`)
	var log logBuffer
	src := newSource(t, "burst", path, nil, engine.SystemClock{}, &log).(*Source)
	src.cfg.QueueSize = 4
	events, done := run(context.Background(), src)
	for i := 0; i < 310; i++ {
		if ev := next(t, events); ev["i"] != float64(i) {
			t.Fatalf("event %d: %v\n%s", i, ev, log.String())
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "QueueFull") || strings.Contains(log.String(), "source plugin failed") {
		t.Fatalf("put_nowait failed:\n%s", log.String())
	}
}

func TestPluginFailures(t *testing.T) {
	t.Parallel()
	needPython(t)
	dir := t.TempDir()
	for name, tc := range map[string]struct{ src, want string }{
		"sync_main":   {"def main(queue, args):\n    pass\n", "main must be 'async def main(queue, args)'"},
		"no_main":     {"x = 1\n", "has no main(queue, args) function"},
		"syntax":      {"async def main(queue, args)\n", "SyntaxError"},
		"import_fail": {"import no_such_module_here\n", "ModuleNotFoundError"},
		"killed":      {"import os, signal\n\nasync def main(queue, args):\n    os.kill(os.getpid(), signal.SIGKILL)\n", "signal: killed"},
		"exits":       {"import os\n\nasync def main(queue, args):\n    os._exit(3)\n", "exit status 3"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := writePlugin(t, dir, name, tc.src)
			var log logBuffer
			clock := engine.NewFakeClock(time.Now())
			src := newSource(t, name, path, nil, clock, &log)
			ctx, cancel := context.WithCancel(context.Background())
			_, done := run(ctx, src)
			bctx, bcancel := context.WithTimeout(ctx, 20*time.Second)
			defer bcancel()
			if err := clock.BlockUntil(bctx, 1); err != nil {
				t.Fatalf("no restart backoff: %v", err)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(log.String(), tc.want) {
				t.Fatalf("log lacks %q:\n%s", tc.want, log.String())
			}
		})
	}
}

// A source stopped while its plugin runs forever ends promptly, and the
// plugin's process is gone.
func TestStopEndsThePlugin(t *testing.T) {
	t.Parallel()
	needPython(t)
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	path := writePlugin(t, dir, "forever", `import asyncio, os

async def main(queue, args):
    with open(args["pid"], "w") as f:
        f.write(str(os.getpid()))
    while True:
        await queue.put({"tick": True})
        await asyncio.sleep(0.01)
`)
	var log logBuffer
	src := newSource(t, "forever", path, map[string]any{"pid": pidFile}, engine.SystemClock{}, &log)
	ctx, cancel := context.WithCancel(context.Background())
	events, done := run(ctx, src)
	next(t, events)
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(string(b))
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the source did not stop")
	}
	if p, err := os.FindProcess(pid); err == nil {
		if err := p.Signal(syscall.Signal(0)); err == nil {
			t.Fatalf("plugin process %d still runs", pid)
		}
	}
	if strings.Contains(log.String(), "source plugin failed") {
		t.Fatalf("a stop was logged as a failure:\n%s", log.String())
	}
}

// Without the interpreter the source cannot go on: an error, no restarts.
func TestNoInterpreter(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := writePlugin(t, dir, "range", rangePlugin)
	src := New(Config{Name: "range", Path: path, Python: "no-such-python-h18b", Clock: engine.NewFakeClock(time.Now())})
	err := src.Run(context.Background(), make(sourcetest.Events))
	if err == nil || !strings.Contains(err.Error(), "no-such-python-h18b") || !strings.Contains(err.Error(), "RULEBOOK_PYTHON") {
		t.Fatalf("Run = %v", err)
	}
}
