package durability

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/test/rbtest"
)

// TestFileSourceKilledMidFileResumes reads a file of numbered lines through
// a rule that fires on each, kills rulebook with SIGKILL partway through
// the file, and starts it again on the same data dir: the second run
// resumes, and every line is processed exactly once (the lines carry their
// own meta.uuid, so a line accepted twice would show twice in the audit).
func TestFileSourceKilledMidFileResumes(t *testing.T) {
	dir := t.TempDir()
	const total = 50000
	in := dir + "/in.ndjson"
	var b strings.Builder
	for i := 0; i < total; i++ {
		fmt.Fprintf(&b, "{\"n\": %d, \"meta\": {\"uuid\": \"line-%d\"}}\n", i, i)
	}
	writeFile(t, in, b.String())
	rb := dir + "/rb.yml"
	writeFile(t, rb, fmt.Sprintf(`- name: file
  sources:
    - name: lines
      file: {path: %q}
  rules:
    - name: every line
      condition: event.n >= 0
      action:
        none: {}
`, in))
	data := dir + "/data"
	admin := rbtest.FreeAddr(t)
	p := start(t, rb, data, "--admin", admin)
	var fired int
	rbtest.WaitFor(t, 60*time.Second, "a twentieth of the file processed", func() bool {
		fired = firings(admin)
		return fired >= total/20 || p.Exited()
	})
	p.Kill()
	if fired >= total || strings.Contains(p.Log(), "all sources ended") {
		t.Fatalf("the kill did not land mid-file: %d of %d lines fired", fired, total)
	}

	p = start(t, rb, data)
	if exited, err := p.Wait(120 * time.Second); !exited || err != nil {
		t.Fatalf("the second run did not end by itself with the file: exited %v, %v\n%s", exited, err, p.Log())
	}
	resumed := p.LogLines("resumed: lines accepted before were skipped")
	if len(resumed) != 1 {
		t.Fatalf("the second run did not resume:\n%s", p.Log())
	}
	skipped, _ := resumed[0]["skipped"].(float64)
	if skipped < float64(fired) || skipped >= total {
		t.Errorf("second run skipped %v lines; %d had fired before the kill, %d in the file", skipped, fired, total)
	}

	seen := firedCounts(t, data)
	for i := 0; i < total; i++ {
		if n := seen["line-"+strconv.Itoa(i)]; n != 1 {
			t.Errorf("line %d fired %d times", i, n)
		}
	}
	if len(seen) != total {
		t.Errorf("%d distinct events fired for %d lines", len(seen), total)
	}
	t.Logf("%d lines fired before the kill; the restart skipped %v", fired, skipped)
}

// firings reads rulebook_rule_firings_total from the admin /metrics (0
// while it cannot).
func firings(admin string) int {
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	n := 0
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 8<<20))
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "rulebook_rule_firings_total") {
			f := strings.Fields(l)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			n += int(v)
		}
	}
	return n
}
