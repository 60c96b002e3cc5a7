package plugins

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/plugins/proto"
)

// binDir holds the test plugins, built once for the whole package.
var binDir string

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "rulebook-testplugins-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./internal/testplugins/...")
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("build test plugins: %v\n%s", err, out)
	}
	binDir = dir
	return m.Run(), nil
}

// pluginDir returns a fresh directory holding the named test plugins as
// rulebook-plugin-NAME.
func pluginDir(t *testing.T, names ...string) string {
	t.Helper()
	return linkedDir(t, FilePrefix, names...)
}

// linkedDir returns a fresh directory holding the named test plugins as
// prefix+NAME.
func linkedDir(t *testing.T, prefix string, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		if err := os.Symlink(filepath.Join(binDir, n), filepath.Join(dir, prefix+n)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixture struct {
	host  *Host
	infos []Info
	err   error
	log   *syncBuffer
	clock *engine.FakeClock
}

func startHost(t *testing.T, opts Options) *fixture {
	t.Helper()
	f := &fixture{log: &syncBuffer{}, clock: engine.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	opts.Log = zerolog.New(f.log).Level(zerolog.DebugLevel)
	if opts.Clock == nil {
		opts.Clock = f.clock
	}
	if opts.CancelGrace == 0 {
		opts.CancelGrace = 100 * time.Millisecond
	}
	if opts.StateDir == "" {
		opts.StateDir = t.TempDir()
	}
	h, err := NewHost(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f.host = h
	f.infos, f.err = h.Start(ctx)
	return f
}

func (f *fixture) action(t *testing.T, typ string) engine.Action {
	t.Helper()
	for _, s := range f.host.Specs() {
		if s.Type == typ {
			a, err := s.New(engine.ActionEnv{})
			if err != nil {
				t.Fatal(err)
			}
			return a
		}
	}
	t.Fatalf("no spec for %q; have %v (start error: %v)", typ, specTypes(f.host.Specs()), f.err)
	return nil
}

func specTypes(specs []engine.ActionSpec) []string {
	var out []string
	for _, s := range specs {
		out = append(out, s.Type)
	}
	return out
}

func invocation(id string, args map[string]any) *engine.Invocation {
	return &engine.Invocation{
		ID: id, FiringID: "f-1", Action: "test.echo", Ruleset: "rs", Rule: "r1",
		Args:   args,
		Event:  engine.Event{"alert": map[string]any{"fingerprint": "abc"}},
		Events: map[string]engine.Event{"m_0": {"n": 1.0}},
		Hosts:  []string{"web1"},
	}
}

func runWithin(t *testing.T, a engine.Action, inv *engine.Invocation, d time.Duration) engine.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return a.Run(ctx, inv)
}

// eventually polls cond (a real process is involved) until a deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStartReportsEachPluginAndKeepsTheGoodOnes(t *testing.T) {
	dir := pluginDir(t, "echo", "crash", "hang", "oldproto")
	sum, err := FileSHA256(filepath.Join(binDir, "echo"))
	if err != nil {
		t.Fatal(err)
	}
	wrong := strings.Repeat("0", 64)
	f := startHost(t, Options{
		Dirs: []string{dir, filepath.Join(t.TempDir(), "missing")},
		Declared: []Declared{
			{Name: "tampered", Path: filepath.Join(binDir, "echo"), SHA256: wrong},
		},
	})
	if f.err == nil {
		t.Fatal("Start returned no error for the bad plugins")
	}

	byName := map[string]Info{}
	for _, in := range f.infos {
		byName[in.Name] = in
	}
	for _, name := range []string{"echo", "crash", "hang"} {
		if in := byName[name]; in.Err != nil || len(in.Actions) == 0 {
			t.Errorf("plugin %q: err %v, actions %v", name, in.Err, in.Actions)
		}
	}
	if got := byName["echo"]; got.Version != "1.2.3" || got.SHA256 != sum || got.ProtocolVersion != proto.ProtocolVersion {
		t.Errorf("echo info = %+v", got)
	}

	old := byName["oldproto"].Err
	if !errors.Is(old, ErrProtocolVersion) {
		t.Fatalf("oldproto error = %v, want ErrProtocolVersion", old)
	}
	wantOld := fmt.Sprintf("plugin protocol version %d, this engine speaks version %d", proto.ProtocolVersion-1, proto.ProtocolVersion)
	if !strings.Contains(old.Error(), wantOld) {
		t.Errorf("oldproto error %q does not name both versions (%q)", old, wantOld)
	}

	bad := byName["tampered"].Err
	if !errors.Is(bad, ErrChecksumMismatch) {
		t.Fatalf("tampered error = %v, want ErrChecksumMismatch", bad)
	}
	for _, want := range []string{filepath.Join(binDir, "echo"), sum, wrong, "refusing to start"} {
		if !strings.Contains(bad.Error(), want) {
			t.Errorf("checksum error %q lacks %q", bad, want)
		}
	}
	if !strings.Contains(f.err.Error(), "oldproto") || !strings.Contains(f.err.Error(), "tampered") {
		t.Errorf("joined start error %q does not name both bad plugins", f.err)
	}

	want := []string{"crash.run", "hang.run", "test.echo", "test.wait"}
	if got := specTypes(f.host.Specs()); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("specs = %v, want %v", got, want)
	}

	// The good plugins work although others failed.
	res := runWithin(t, f.action(t, "test.echo"), invocation("i-1", map[string]any{"message": "hi"}), 10*time.Second)
	if res.Status != engine.Succeeded {
		t.Fatalf("echo = %+v", res)
	}
}

func TestDeclaredPluginWithMatchingChecksumStarts(t *testing.T) {
	path := filepath.Join(binDir, "echo")
	sum, err := FileSHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	f := startHost(t, Options{Declared: []Declared{{Path: path, SHA256: strings.ToUpper(sum)}}})
	if f.err != nil {
		t.Fatal(f.err)
	}
	if len(f.infos) != 1 || f.infos[0].Name != "echo" || !f.infos[0].Declared {
		t.Fatalf("infos = %+v", f.infos)
	}
}

func TestNotAPluginIsReported(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, FilePrefix+"script")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho hello\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	f := startHost(t, Options{Dirs: []string{dir}, StartTimeout: 5 * time.Second})
	if f.err == nil || len(f.infos) != 1 || f.infos[0].Err == nil {
		t.Fatalf("a shell script was accepted as a plugin: %+v, %v", f.infos, f.err)
	}
	if !strings.Contains(f.infos[0].Err.Error(), script) {
		t.Errorf("error %q does not name the file", f.infos[0].Err)
	}
}

func TestInvocationRoundTrip(t *testing.T) {
	f := startHost(t, Options{Dirs: []string{pluginDir(t, "echo")}})
	if f.err != nil {
		t.Fatal(f.err)
	}
	a := f.action(t, "test.echo")

	res := runWithin(t, a, invocation("inv-42", map[string]any{"message": "disk full", "count": 3}), 10*time.Second)
	if res.Status != engine.Succeeded {
		t.Fatalf("result = %+v", res)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(res.Output), &got); err != nil {
		t.Fatalf("output %q: %v", res.Output, err)
	}
	want := map[string]any{
		"id": "inv-42", "firing_id": "f-1", "action": "test.echo", "ruleset": "rs", "rule": "r1",
		"args":   map[string]any{"message": "disk full", "count": 3.0},
		"event":  map[string]any{"alert": map[string]any{"fingerprint": "abc"}},
		"events": map[string]any{"m_0": map[string]any{"n": 1.0}},
		"hosts":  []any{"web1"},
	}
	for k, v := range want {
		if gb, wb := mustJSON(got[k]), mustJSON(v); gb != wb {
			t.Errorf("%s = %s, want %s", k, gb, wb)
		}
	}
	if sd, _ := got["state_dir"].(string); filepath.Base(sd) != "echo" {
		t.Errorf("state dir = %q, want .../echo", sd)
	}
	if res.HTTPStatus != 201 || res.Details["echoed"] != true ||
		len(res.Facts) != 1 || res.Facts[0]["echoed"] != "disk full" ||
		len(res.Events) != 1 || res.Events[0]["from"] != "echo" {
		t.Errorf("result fields = %+v", res)
	}

	t.Run("retryable with retry-after and redaction", func(t *testing.T) {
		inv := invocation("inv-43", map[string]any{"message": "s3cr3t", "fail": "retry"})
		inv.Secrets = []string{"s3cr3t"}
		res := runWithin(t, a, inv, 10*time.Second)
		if res.Status != engine.Retryable || res.RetryAfter != 1500*time.Millisecond {
			t.Fatalf("result = %+v", res)
		}
		if strings.Contains(res.Error, "s3cr3t") || !strings.Contains(res.Error, "******") {
			t.Errorf("secret not redacted: %q", res.Error)
		}
	})
	t.Run("permanent", func(t *testing.T) {
		res := runWithin(t, a, invocation("inv-44", map[string]any{"message": "x", "fail": "permanent"}), 10*time.Second)
		if res.Status != engine.Failed || res.Error != "asked to fail permanently" {
			t.Fatalf("result = %+v", res)
		}
	})

	eventually(t, "the plugin's log line in the engine log", func() bool {
		for _, line := range strings.Split(f.log.String(), "\n") {
			if strings.Contains(line, `"plugin":"echo"`) && strings.Contains(line, `"message":"echo called"`) &&
				strings.Contains(line, `"level":"info"`) && strings.Contains(line, `"action":"test.echo"`) {
				return true
			}
		}
		return false
	})
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestCancellationReachesThePlugin(t *testing.T) {
	f := startHost(t, Options{Dirs: []string{pluginDir(t, "echo")}})
	a := f.action(t, "test.wait")
	start := time.Now()
	res := runWithin(t, a, invocation("w-1", nil), 200*time.Millisecond)
	if res.Status != engine.Retryable || !strings.Contains(res.Error, "deadline") {
		t.Fatalf("result = %+v", res)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Run took %s after a 200ms deadline", took)
	}
	// The plugin saw the cancellation and returned: after the grace the
	// health check finds nothing abandoned, so it is not restarted.
	f.host.wg.Wait()
	res = runWithin(t, f.action(t, "test.echo"), invocation("w-2", map[string]any{"message": "still here"}), 10*time.Second)
	if res.Status != engine.Succeeded {
		t.Fatalf("after cancel: %+v", res)
	}
	if n := f.host.Restarts("echo"); n != 0 {
		t.Errorf("restarts = %d, want 0 (a plugin that honours cancellation is not hung)", n)
	}
}

func TestCrashedPluginIsRestartedWithBackoff(t *testing.T) {
	backoff := func(n int) time.Duration { return time.Duration(n) * time.Minute }
	f := startHost(t, Options{Dirs: []string{pluginDir(t, "crash")}, Backoff: backoff})
	if f.err != nil {
		t.Fatal(f.err)
	}
	a := f.action(t, "crash.run")
	inv := invocation("c-1", map[string]any{"marker": filepath.Join(t.TempDir(), "marker")})
	inv.Action = "crash.run"

	res := runWithin(t, a, inv, 10*time.Second)
	if res.Status != engine.Retryable || !strings.Contains(res.Error, "crashed") {
		t.Fatalf("crash = %+v", res)
	}

	// Within the backoff the plugin is not started again.
	res = runWithin(t, a, inv, 10*time.Second)
	if res.Status != engine.Retryable || res.RetryAfter != time.Minute || !strings.Contains(res.Error, "next start in 1m0s") {
		t.Fatalf("during backoff = %+v", res)
	}
	if n := f.host.Restarts("crash"); n != 0 {
		t.Fatalf("restarted during the backoff (%d)", n)
	}

	f.clock.Advance(time.Minute)
	// Several retries arrive at once: one start serves them all.
	var wg sync.WaitGroup
	results := make([]engine.Result, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = runWithin(t, a, inv, 10*time.Second)
		}()
	}
	wg.Wait()
	for _, res := range results {
		if res.Status != engine.Succeeded || !strings.HasPrefix(res.Output, "survived") {
			t.Fatalf("retry after restart = %+v", res)
		}
	}
	if n := f.host.Restarts("crash"); n != 1 {
		t.Errorf("restarts = %d, want 1", n)
	}
	eventually(t, "the panic in the engine log", func() bool {
		return strings.Contains(f.log.String(), "simulated crash in c-1") && strings.Contains(f.log.String(), `"plugin":"crash"`)
	})
}

func TestHungPluginIsKilledAndRestarted(t *testing.T) {
	f := startHost(t, Options{Dirs: []string{pluginDir(t, "hang")}, Backoff: func(int) time.Duration { return 0 }})
	if f.err != nil {
		t.Fatal(f.err)
	}
	a := f.action(t, "hang.run")
	inv := invocation("h-1", map[string]any{"marker": filepath.Join(t.TempDir(), "marker")})
	inv.Action = "hang.run"
	pid := f.host.pid("hang")

	res := runWithin(t, a, inv, 300*time.Millisecond)
	if res.Status != engine.Retryable || !strings.Contains(res.Error, "deadline") {
		t.Fatalf("hang = %+v", res)
	}
	f.host.wg.Wait() // the hang check ran
	eventually(t, "the hung process to be gone", func() bool { return !alive(pid) })

	res = runWithin(t, a, inv, 10*time.Second)
	if res.Status != engine.Succeeded {
		t.Fatalf("retry = %+v", res)
	}
	if n := f.host.Restarts("hang"); n != 1 {
		t.Errorf("restarts = %d, want 1", n)
	}
	if !strings.Contains(f.log.String(), "still running a call") {
		t.Errorf("the hang was not logged:\n%s", f.log.String())
	}
}

func TestFrozenPluginFailsItsHealthCheckAndIsRestarted(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGSTOP")
	}
	f := startHost(t, Options{Dirs: []string{pluginDir(t, "hang")}, Backoff: func(int) time.Duration { return 0 }, HealthTimeout: 200 * time.Millisecond})
	if f.err != nil {
		t.Fatal(f.err)
	}
	a := f.action(t, "hang.run")
	inv := invocation("z-1", map[string]any{"marker": filepath.Join(t.TempDir(), "marker"), "freeze": true})
	inv.Action = "hang.run"
	pid := f.host.pid("hang")

	res := runWithin(t, a, inv, 300*time.Millisecond)
	if res.Status != engine.Retryable {
		t.Fatalf("frozen = %+v", res)
	}
	f.host.wg.Wait()
	eventually(t, "the frozen process to be killed", func() bool { return !alive(pid) })
	if !strings.Contains(f.log.String(), "no answer to a health check") {
		t.Errorf("the freeze was not logged as a failed health check:\n%s", f.log.String())
	}
	if res := runWithin(t, a, inv, 10*time.Second); res.Status != engine.Succeeded {
		t.Fatalf("retry = %+v", res)
	}
}

func TestCloseStopsEveryPluginAndIsIdempotent(t *testing.T) {
	f := startHost(t, Options{Dirs: []string{pluginDir(t, "echo", "crash")}})
	pids := []int{f.host.pid("echo"), f.host.pid("crash")}
	for _, pid := range pids {
		if !alive(pid) {
			t.Fatalf("plugin pid %d not running", pid)
		}
	}
	a := f.action(t, "test.echo")
	if err := f.host.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.host.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		eventually(t, fmt.Sprintf("pid %d to exit", pid), func() bool { return !alive(pid) })
	}
	res := runWithin(t, a, invocation("after", map[string]any{"message": "x"}), time.Second)
	if res.Status != engine.Retryable || !strings.Contains(res.Error, "shut down") {
		t.Errorf("run after close = %+v", res)
	}
}

func TestRegister(t *testing.T) {
	f := startHost(t, Options{Dirs: []string{pluginDir(t, "echo")}})
	reg := engine.NewRegistry()
	reg.RegisterAction(engine.ActionSpec{Type: "test.wait", New: func(engine.ActionEnv) (engine.Action, error) { return nil, nil }})
	err := f.host.Register(reg)
	if err == nil || !strings.Contains(err.Error(), `"test.wait"`) {
		t.Fatalf("Register error = %v, want the clash on test.wait", err)
	}
	spec, ok := reg.Action("test.echo")
	if !ok || spec.Description != "returns its arguments" {
		t.Fatalf("test.echo not registered: %+v", spec)
	}
	if req, _ := spec.Schema["required"].([]any); len(req) != 1 || req[0] != "message" {
		t.Errorf("published schema = %v", spec.Schema)
	}
	if err := spec.Check(map[string]any{"message": "{{ event.msg }}", "count": "{{ event.n }}"}); err != nil {
		t.Errorf("templated args rejected: %v", err)
	}
	var ae *engine.ArgError
	if err := spec.Check(map[string]any{"message": "x", "count": 0}); !errors.As(err, &ae) || strings.Join(ae.Path, ".") != "count" {
		t.Errorf("count 0 = %v, want an ArgError at count", err)
	}
}

// pid returns the process id of the running plugin called name (0 if none).
func (h *Host) pid(name string) int {
	h.mu.Lock()
	procs := h.procs
	h.mu.Unlock()
	for _, p := range procs {
		if p.name != name {
			continue
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.client == nil {
			return 0
		}
		if rc := p.client.ReattachConfig(); rc != nil {
			return rc.Pid
		}
	}
	return 0
}

func alive(pid int) bool {
	if pid <= 0 || runtime.GOOS == "windows" {
		return false
	}
	// A zombie still answers signal 0, so look at its state too.
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		if f := strings.Fields(string(b)); len(f) > 2 && f[2] == "Z" {
			return false
		}
	}
	return syscall.Kill(pid, 0) == nil
}
