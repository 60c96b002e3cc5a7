// Package durability tests the promises of the ingest path and the
// dispatcher against the real rulebook binary: what got a 2xx is processed
// exactly once whatever crashes, and every accepted action invocation
// reaches a final state after a kill -9.
package durability

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/rulebook-dev/rulebook/test/rbtest"
)

var binary string

func TestMain(m *testing.M) { os.Exit(rbtest.Main(m, "rulebook-durability", &binary)) }

// start runs `rulebook run` on rulebook with JSON info logs.
func start(t *testing.T, rulebook, dataDir string, extra ...string) *rbtest.Process {
	t.Helper()
	args := append([]string{"run", rulebook, "--data-dir", dataDir, "--log-format", "json", "--log-level", "info"}, extra...)
	return rbtest.Start(t, binary, args...)
}

func post(ctx context.Context, url, delivery, body string) (int, []string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Delivery", delivery)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var ans struct {
		IDs []string `json:"ids"`
	}
	json.NewDecoder(resp.Body).Decode(&ans)
	return resp.StatusCode, ans.IDs, nil
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
