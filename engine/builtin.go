package engine

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// ShutdownRequest is what a shutdown action asked for.
type ShutdownRequest struct {
	Message string
	Delay   time.Duration
	// Now skips draining running actions (kind: now).
	Now     bool
	Ruleset string
	Rule    string
}

func (e *Engine) targetRuleset(s *rsState, args map[string]any) *rsState {
	if name, ok := args["ruleset"].(string); ok && name != "" {
		if t := e.byName[name]; t != nil {
			return t
		}
		e.opts.Log.Error().Str("ruleset", name).Msg("action names an unknown ruleset")
		return nil
	}
	return s
}

func (e *Engine) builtin(s *rsState, rule *Rule, typ string, args map[string]any, event map[string]any, events map[string]Event) {
	switch typ {
	case ActionDebug:
		e.debug(s, rule, args, event, events)
	case ActionPrintEvent:
		var v any = event
		if len(events) > 1 {
			v = events
		}
		var b []byte
		if pretty, _ := args["pretty"].(bool); pretty {
			b, _ = json.MarshalIndent(v, "", "  ")
		} else {
			b, _ = json.Marshal(v)
		}
		fmt.Fprintln(e.opts.Stdout, string(b))
	case ActionSetFact:
		if t := e.targetRuleset(s, args); t != nil {
			if fact, ok := args["fact"].(map[string]any); ok {
				e.assertFact(t, fact)
			}
		}
	case ActionRetractFact:
		if t := e.targetRuleset(s, args); t != nil {
			if fact, ok := args["fact"].(map[string]any); ok {
				partial := true
				if p, ok := args["partial"].(bool); ok {
					partial = p
				}
				e.retractFact(t, fact, partial)
			}
		}
	case ActionPostEvent:
		if t := e.targetRuleset(s, args); t != nil {
			if ev, ok := args["event"].(map[string]any); ok {
				e.postEvent(t, ev, rule.Name)
			}
		}
	case ActionShutdown:
		req := ShutdownRequest{Ruleset: s.rs.Name, Rule: rule.Name}
		req.Message, _ = args["message"].(string)
		if d, ok := args["delay"]; ok {
			req.Delay, _ = ParseDuration(d)
		}
		req.Now = args["kind"] == "now"
		// "message" is the log line's own key: the action's is shutdown_message.
		e.opts.Log.Info().Str("ruleset", s.rs.Name).Str("rule", rule.Name).Str("shutdown_message", req.Message).Msg("shutdown requested")
		if e.opts.OnShutdown != nil {
			e.opts.OnShutdown(req)
		}
	case ActionNone:
	}
}

func (e *Engine) debug(s *rsState, rule *Rule, args map[string]any, event map[string]any, events map[string]Event) {
	w := e.opts.Stdout
	if msg, ok := args["msg"]; ok {
		switch m := msg.(type) {
		case []any:
			for _, line := range m {
				fmt.Fprintln(w, Text(line))
			}
		default:
			fmt.Fprintln(w, Text(m))
		}
		return
	}
	if name, ok := args["var"].(string); ok {
		e.st.bind(event, toAnyMap(events), e.vars(s))
		root, rest, _ := strings.Cut(name, ".")
		var keys []any
		if rest != "" {
			for _, k := range strings.Split(rest, ".") {
				keys = append(keys, k)
			}
		}
		v, ok := lookup(e.st.env.root(root), keys)
		if !ok {
			fmt.Fprintf(w, "%s: (not defined)\n", name)
			return
		}
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "%s: %s\n", name, b)
		return
	}
	b, _ := json.MarshalIndent(map[string]any{"ruleset": s.rs.Name, "rule": rule.Name, "event": event, "events": events, "vars": e.vars(s)}, "", "  ")
	fmt.Fprintln(w, string(b))
}

func toAnyMap(m map[string]Event) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (e *Engine) postEvent(s *rsState, ev map[string]any, by string) {
	data, _ := deepCopy(ev).(map[string]any)
	if meta := Meta(data); meta[MetaUUID] == nil {
		meta[MetaUUID] = e.itemID()
	}
	data = NewEvent(data, by, "post_event", e.now())
	e.queue = append(e.queue, queued{rs: s, it: &item{id: EventID(data), data: data}, cause: e.queuing})
}
