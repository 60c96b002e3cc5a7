package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os/user"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/admin"
	"github.com/rulebook-dev/rulebook/dispatch"
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

// notifyTimeout bounds a notify action that sets no timeout.
const notifyTimeout = time.Minute

// notifyApproval runs the rule's approval notify action, if any, for an
// invocation that started waiting, or that a start found waiting (the
// dispatcher asks again then, since a crash may have lost the first): its
// templates see the event and vars.approval (id, approve_command,
// reject_command, url). It runs in the background, outside the durable
// queue; a retryable failure is tried again as the action's policy says
// (retries, delay, max_delay) while the approval's deadline leaves time
// for the wait, and a failure is logged: the invocation waits all the
// same. The notification waits for the admin listener to listen, if
// there is one, for its approve link (a start asks for the waiting
// actions' notifications before the listener starts).
func (a *app) notifyApproval(st *engine.InvocationState) {
	go func() {
		<-a.adminReady
		a.sendApprovalNotify(st)
	}()
}

// sendApprovalNotify renders and runs the notify action of notifyApproval.
func (a *app) sendApprovalNotify(st *engine.InvocationState) {
	inv := st.Invocation
	_, ap := a.ruleMode(inv.Ruleset, inv.Rule)
	if ap == nil || ap.Notify == nil {
		return
	}
	def := ap.Notify
	var vars map[string]any
	for _, rs := range a.currentRulesets() {
		if rs.Name == inv.Ruleset {
			vars = rs.Vars
			break
		}
	}
	log := a.log.With().Str("ruleset", inv.Ruleset).Str("rule", inv.Rule).Str("invocation_id", inv.ID).Str("action", def.Type).Logger()
	adminFlag, url := "", ""
	if u := a.adminURL.Load(); u != nil {
		adminFlag = " --admin " + *u
		url = *u + "/api/approvals/" + inv.ID
	}
	nv := make(map[string]any, len(vars)+1)
	for k, v := range vars {
		nv[k] = v
	}
	nv["approval"] = engine.ApprovalVars(inv.ID, "rulebook approve "+inv.ID+adminFlag, "rulebook reject "+inv.ID+adminFlag, url)
	events := make(map[string]any, len(inv.Events))
	for k, v := range inv.Events {
		events[k] = map[string]any(v)
	}
	args, refs, err := def.Args.RenderRefs(engine.Env{Event: inv.Event, Events: events, Vars: nv})
	m, ok := args.(map[string]any)
	if err != nil || !ok {
		log.Error().AnErr("render_error", err).Msg("approval notify: arguments did not render")
		return
	}
	n := &engine.Invocation{ID: inv.ID + "-notify", FiringID: inv.FiringID, Action: def.Type, Ruleset: inv.Ruleset, Rule: inv.Rule,
		Args: m, SecretRefs: refs, RefsListed: true, Event: inv.Event, Events: inv.Events, Hosts: inv.Hosts, HostPattern: inv.HostPattern,
		Policy: def.Policy, Created: a.clock.Now()}
	act, ok := a.actions.get(def.Type)
	if !ok {
		log.Error().Msg("approval notify: action not built")
		return
	}
	resolved, secrets, err := n.ResolveArgs()
	if err != nil {
		log.Error().Err(err).Msg("approval notify: arguments")
		return
	}
	run := *n
	run.Args, run.Secrets = resolved, secrets
	timeout := def.Policy.Timeout
	if timeout <= 0 {
		timeout = notifyTimeout
	}
	r := notifyRetry{policy: def.Policy, clock: a.clock, jitter: rand.Float64, redact: n.Redact, stop: a.stopped, log: log}
	if st.Approval != nil {
		r.deadline = st.Approval.Deadline
	}
	r.run(func() engine.Result {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return act.Run(ctx, &run)
	})
}

// notifyRetry says how an approval notification is tried again: as the
// notify action's policy says (retries, delay, max_delay: the
// dispatcher's backoff, waited on clock with jitter), not beginning a
// wait that would end after deadline (when set), and giving up once stop
// is closed (the run ends; its next start sends the notification again).
// Errors are logged through redact.
type notifyRetry struct {
	policy   engine.Policy
	deadline time.Time
	clock    engine.Clock
	jitter   func() float64
	redact   func(string) string
	stop     <-chan struct{}
	log      zerolog.Logger
}

// run calls send until it succeeds, fails for good or runs out of
// retries, time or run, and logs how it ended.
func (r notifyRetry) run(send func() engine.Result) {
	for attempt := 1; ; attempt++ {
		res := send()
		if res.Status == engine.Succeeded {
			r.log.Info().Int("attempt", attempt).Msg("approval notify sent")
			return
		}
		errText := r.redact(res.Error)
		if res.Status != engine.Retryable || attempt > r.policy.Retries {
			r.log.Error().Int("attempt", attempt).Str("error", errText).Msg("approval notify failed")
			return
		}
		wait := dispatch.Backoff(r.policy, attempt, r.jitter())
		if !r.deadline.IsZero() && r.clock.Now().Add(wait).After(r.deadline) {
			r.log.Error().Int("attempt", attempt).Str("error", errText).Msg("approval notify failed; the approval's deadline leaves no time to try again")
			return
		}
		r.log.Warn().Int("attempt", attempt).Dur("retry_in", wait).Str("error", errText).Msg("approval notify failed; trying again")
		t := engine.NewTimer(r.clock, wait)
		select {
		case <-t.C():
		case <-r.stop:
			t.Stop()
			r.log.Warn().Int("attempt", attempt).Msg("approval notify not tried again: the run is ending (the next start sends it again)")
			return
		}
	}
}
