package dashboard

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestDashboardThroughTheBinary runs the real rulebook binary with --admin,
// sends an event through its webhook source, and watches the dashboard in
// headless Chromium: the event appears in the live feed and the rule's hit
// count rises. A screenshot is saved.
func TestDashboardThroughTheBinary(t *testing.T) {
	br := StartBrowser(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "rulebook")
	build := exec.Command("go", "build", "-o", bin, "github.com/rulebook-dev/rulebook/cmd/rulebook")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	hook, adminAddr := freeAddr(t), freeAddr(t)
	rb := filepath.Join(dir, "rb.yml")
	os.WriteFile(rb, []byte(fmt.Sprintf(`- name: ops
  sources:
    - name: alerts
      webhook: {address: %q, path: /hook}
  rules:
    - name: restart on down
      condition: event.payload.status == "down"
      action:
        run_command:
          argv: [echo, "restarting {{ event.payload.host }}"]
    - name: log recovery
      condition: event.payload.status == "up"
      action: {none: {}}
`, hook)), 0o644)
	cmd := exec.Command(bin, "run", rb, "--data-dir", filepath.Join(dir, "data"), "--admin", adminAddr, "--log-format", "json")
	var logs syncBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + adminAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("rulebook never became ready\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	p := OpenPage(t, ctx, br, "http://"+adminAddr+"/")
	wait := func(what, expr string) {
		t.Helper()
		wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
		defer wcancel()
		if err := p.WaitTrue(wctx, expr, describePage); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, logs.String())
		}
	}
	wait("rules", `document.querySelectorAll("#rules tbody tr").length === 2`)
	wait("no hits yet", hitsExpr("ops", "restart on down")+" === 0")
	wait("stream connected", `document.getElementById("conn").textContent === "live"`)

	resp, err := http.Post("http://"+hook+"/hook", "application/json", strings.NewReader(`{"host": "web7", "status": "down"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("webhook: %v %v", resp, err)
	}
	resp.Body.Close()

	wait("the webhook's event in the feed", `[...document.querySelectorAll('#feed .feed-item')].some(el => el.textContent.includes("web7"))`)
	wait("hit count 1", hitsExpr("ops", "restart on down")+" === 1")
	wait("action history", `[...document.querySelectorAll("#audit tbody tr")].some(tr => tr.textContent.includes("restarting web7") && tr.textContent.includes("succeeded"))`)
	_ = p.Eval(ctx, `window.scrollTo(0, 0)`, nil)
	SaveScreenshot(t, ctx, p, "dashboard-binary.png")
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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
