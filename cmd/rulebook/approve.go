package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/user"
	"strings"

	"github.com/rulebook-dev/rulebook/admin"
	"github.com/rulebook-dev/rulebook/engine"
)

// cmdDecide is `rulebook approve ID` and `rulebook reject ID`: it asks the
// running engine's admin listener (POST /api/approvals/ID), which records
// the decision with the identity it authenticated.
func cmdDecide(name, decision string, args []string, stdout, stderr io.Writer) error {
	fs := newFlags(name, name+" ID [--reason TEXT] [--admin ADDR] [--admin-token T]", stderr)
	reason := fs.String("reason", "", "why, recorded in the audit trail")
	adminAddr := fs.String("admin", admin.DefaultAddress, "the running engine's admin listener `ADDR` (host:port or URL)")
	tokenFlag := fs.String("admin-token", "", "bearer token of that admin listener (also RULEBOOK_ADMIN_TOKEN; ${env:..}/${file:..} allowed)")
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 || rest[0] == "" {
		fs.Usage()
		return errUsage
	}
	token, err := adminToken(*tokenFlag)
	if err != nil {
		return err
	}
	base := *adminAddr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return fmt.Errorf("--admin: %q is not host:port or a URL", *adminAddr)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/api/approvals/" + url.PathEscape(rest[0])
	who := ""
	if cur, err := user.Current(); err == nil {
		who = cur.Username
	}
	body, _ := json.Marshal(admin.DecisionRequest{Decision: decision, Reason: *reason, User: who})
	ctx, cancel := context.WithTimeout(context.Background(), auditTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("--admin: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("--admin: %w", err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("--admin: read the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(out))
		if json.Unmarshal(out, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return fmt.Errorf("%s %s: %s answered %s: %s", name, rest[0], u.Host, resp.Status, msg)
	}
	var st engine.InvocationState
	if err := json.Unmarshal(out, &st); err != nil || st.Invocation == nil || st.Approval == nil {
		return fmt.Errorf("%s: %s did not answer with the invocation: %v", name, u.Host, err)
	}
	fmt.Fprintf(stdout, "%s %s (rule %q, action %s) by %s\n", st.Approval.Decision, st.Invocation.ID, st.Invocation.Rule, st.Invocation.Action, st.Approval.By)
	return nil
}
