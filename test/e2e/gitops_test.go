package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/test/rbtest"
)

// hookPostEnv switches the test binary into the git hook's HTTP poster:
// `URL SIGNATURE DELIVERY` with the body on stdin. It prints the answer's
// status code.
const hookPostEnv = "RULEBOOK_E2E_HOOK_POST"

func hookPost(args []string) int {
	if len(args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: URL SIGNATURE DELIVERY < body")
		return 2
	}
	body, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	req, err := http.NewRequest(http.MethodPost, args[0], bytes.NewReader(body))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/e2e")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", args[2])
	req.Header.Set("X-Hub-Signature-256", args[1])
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		fmt.Println("error", err)
		return 0
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	return 0
}

// postReceive is the bare repository's hook: one GitHub-style push event per
// updated ref, signed with openssl like GitHub signs (HMAC-SHA256 of the
// body, hex, "sha256=" prefix), with the secret read from a file so the test
// can make it wrong.
const postReceive = `#!/bin/sh
set -u
while read -r old new ref; do
  body=$(printf '{"ref":"%s","before":"%s","after":"%s","repository":{"full_name":"e2e/app","clone_url":"%s"},"pusher":{"name":"e2e"}}' "$ref" "$old" "$new" "$REPO")
  sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$(cat "$SECRET_FILE")" | sed 's/^.*= //')
  delivery=$(cat /proc/sys/kernel/random/uuid)
  status=$(printf '%s' "$body" | ` + hookPostEnv + `=1 "$POSTER" "$URL" "sha256=$sig" "$delivery")
  echo "$ref $new $status" >> "$HOOK_LOG"
done
`

const gitopsRulebook = `
- name: gitops
  hosts: all
  sources:
    - name: github
      webhook:
        address: 127.0.0.1:%d
        path: /hooks/github
        hmac:
          preset: github
          secret: ${env:E2E_GITHUB_SECRET}
        dedupe:
          header: X-GitHub-Delivery
  rules:
    - name: deploy main
      condition: event.meta.headers["X-Github-Event"] == "push" && event.payload.ref == "refs/heads/main"
      action:
        run_playbook:
          name: %s
          inventory: "localhost,"
          limit: localhost
          connection: local
          extra_vars:
            repo: %s
            checkout: %s
            deployed: %s
`

func TestGitOpsDeployOnPush(t *testing.T) {
	need(t, "ansible-playbook")
	git := need(t, "git")
	need(t, "openssl")
	dir := t.TempDir()
	origin := filepath.Join(dir, "origin.git")
	work := filepath.Join(dir, "work")
	checkout := filepath.Join(dir, "checkout")
	deployed := filepath.Join(dir, "deployed")
	secretFile := filepath.Join(dir, "hook-secret")
	hookLog := filepath.Join(dir, "hook.log")
	const secret = "It's a Secret to Everybody"
	writeFile(t, secretFile, secret)
	if err := os.MkdirAll(deployed, 0o755); err != nil {
		t.Fatal(err)
	}

	port := rbtest.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/hooks/github", port)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	gitEnv := append(os.Environ(),
		"GIT_AUTHOR_NAME=e2e", "GIT_AUTHOR_EMAIL=e2e@example.com",
		"GIT_COMMITTER_NAME=e2e", "GIT_COMMITTER_EMAIL=e2e@example.com",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"REPO="+origin, "SECRET_FILE="+secretFile, "POSTER="+self, "URL="+url, "HOOK_LOG="+hookLog,
	)
	runGit := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command(git, args...)
		cmd.Dir = dir
		cmd.Env = gitEnv
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	runGit(dir, "init", "--quiet", "--bare", "--initial-branch=main", origin)
	writeFile(t, filepath.Join(origin, "hooks", "post-receive"), postReceive)
	if err := os.Chmod(filepath.Join(origin, "hooks", "post-receive"), 0o755); err != nil {
		t.Fatal(err)
	}
	runGit(dir, "clone", "--quiet", origin, work)
	runGit(work, "checkout", "--quiet", "-b", "main")
	commit := func(content, msg string) string {
		t.Helper()
		writeFile(t, filepath.Join(work, "app.conf"), content)
		runGit(work, "add", "app.conf")
		runGit(work, "commit", "--quiet", "-m", msg)
		return runGit(work, "rev-parse", "HEAD")
	}

	rb := startRulebook(t, dir, fmt.Sprintf(gitopsRulebook, port, testdata(t, "deploy.yml"), origin, checkout, deployed),
		engineOptions{env: []string{"E2E_GITHUB_SECRET=" + secret}})
	rb.waitListening(t, fmt.Sprintf("127.0.0.1:%d", port), 20*time.Second)

	deployedRev := func() string { return strings.TrimSpace(readFile(filepath.Join(deployed, "REVISION"))) }

	// 1. A push to main is deployed.
	v1 := commit("version = 1\n", "v1")
	runGit(work, "push", "--quiet", "origin", "main")
	waitFor(t, "v1 deployed", 60*time.Second, func() bool { return deployedRev() == v1 })
	if got := readFile(filepath.Join(deployed, "app.conf")); got != "version = 1\n" {
		t.Fatalf("deployed app.conf %q", got)
	}

	// 2. A push to another branch is accepted and does nothing.
	runGit(work, "checkout", "--quiet", "-b", "feature")
	feature := commit("version = feature\n", "feature work")
	runGit(work, "push", "--quiet", "origin", "feature")

	// 3. A push to main with a bad signature is refused and does nothing.
	runGit(work, "checkout", "--quiet", "main")
	writeFile(t, secretFile, "not the secret")
	v2 := commit("version = 2\n", "v2, badly signed")
	runGit(work, "push", "--quiet", "origin", "main")

	// 4. A good push to main again: once it is deployed, everything before
	// it has been processed (the journal is processed in order).
	writeFile(t, secretFile, secret)
	v3 := commit("version = 3\n", "v3")
	runGit(work, "push", "--quiet", "origin", "main")
	waitFor(t, "v3 deployed", 60*time.Second, func() bool { return deployedRev() == v3 })
	if got := readFile(filepath.Join(deployed, "app.conf")); got != "version = 3\n" {
		t.Fatalf("deployed app.conf %q", got)
	}

	wantLog := fmt.Sprintf("refs/heads/main %s 200\nrefs/heads/feature %s 200\nrefs/heads/main %s 401\nrefs/heads/main %s 200\n", v1, feature, v2, v3)
	if got := readFile(hookLog); got != wantLog {
		t.Errorf("hook log:\n%s\nwant:\n%s", got, wantLog)
	}

	rb.stop(t, 60*time.Second)
	entries := audit(t, rb.dataDir)
	deploys := firingsOf(entries, "deploy main")
	if len(deploys) != 2 || len(entries) != 2 {
		t.Fatalf("%d firings (%d of deploy main), want 2 deploys: %+v", len(entries), len(deploys), entries)
	}
	for _, e := range deploys {
		requireSucceeded(t, e)
	}
}
