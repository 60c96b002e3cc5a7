package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/test/rbtest"
)

// TestDashboardThroughTheBinary runs the real rulebook binary with --admin,
// sends an event through its webhook source, and watches the dashboard in
// headless Chromium: the event appears in the live feed and the rule's hit
// count rises. A screenshot is saved.
func TestDashboardThroughTheBinary(t *testing.T) {
	br := StartBrowser(t)
	dir := t.TempDir()
	bin := rbtest.BuildT(t)
	hook, adminAddr := rbtest.FreeAddr(t), rbtest.FreeAddr(t)
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
	rbp := rbtest.Start(t, bin, "run", rb, "--data-dir", filepath.Join(dir, "data"), "--admin", adminAddr, "--log-format", "json")
	defer func() {
		_ = rbp.Cmd.Process.Signal(syscall.SIGTERM)
		rbp.Wait(rbtest.StopTimeout)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rbp.WaitOK(t, "http://"+adminAddr+"/readyz")

	p := OpenPage(t, ctx, br, "http://"+adminAddr+"/")
	wait := pageWaiter(t, ctx, p, rbp.Log)
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
