// Package metrics holds Rulebook's Prometheus metrics in a registry of their
// own (never the global default one), served by Handler on /metrics.
//
// Metrics come in two ways. Counters that an event drives are pushed by the
// wiring through methods (EventReceived, Firing, ActionResult,
// ObserveCommit, ...). Values that a component already keeps are pulled at
// scrape time through functions the wiring sets (SetBacklogFunc,
// SetKafkaLagFunc, PluginRestarts, SetSourceCountsFunc); a function may be
// replaced at any time (after a reload) and nil removes it.
//
// Every method is safe for concurrent use and cheap enough to call on the
// event path (a label lookup and an atomic add). Label values that come from
// outside input are bounded: an outcome that is not one of the Outcome
// constants is counted as "other".
//
// # Metrics
//
//	rulebook_events_received_total{source}                 counter
//	rulebook_events_accepted_total{source}                 counter
//	rulebook_events_rejected_total{source,reason}          counter
//	rulebook_events_processed_total{ruleset}               counter
//	rulebook_journal_backlog                               gauge
//	rulebook_journal_commit_duration_seconds               histogram
//	rulebook_rule_evaluations_total{ruleset,rule}          counter
//	rulebook_rule_firings_total{ruleset,rule}              counter
//	rulebook_action_attempt_duration_seconds{action,result}     histogram
//	rulebook_action_invocations_total{action,result}            counter
//	rulebook_action_invocation_duration_seconds{action,result}  histogram
//	rulebook_action_retries_total{action}                  counter
//	rulebook_action_dead_letters_total{action}             counter
//	rulebook_actions_running                               gauge
//	rulebook_firings_active                                gauge
//	rulebook_plugin_restarts_total{plugin}                 counter
//	rulebook_kafka_consumer_lag{source,topic,partition}    gauge
//
// plus the Go runtime and process collectors (go_*, process_*).
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rulebook-dev/rulebook/engine"
)

// Namespace prefixes every Rulebook metric.
const Namespace = "rulebook"

// Outcomes of one event offered by a source (the outcome argument of
// EventReceived and SourceCount.Outcome). OutcomeAccepted counts as
// accepted; every other outcome is a rejection reason.
const (
	OutcomeAccepted = "accepted"
	// ReasonAuth: a missing or wrong credential or signature (401).
	ReasonAuth = "auth"
	// ReasonParse: a body that does not parse or build into events (400).
	ReasonParse = "parse"
	// ReasonSize: a body over the size limit (413).
	ReasonSize = "size"
	// ReasonStale: older than the newest event seen for its order key.
	ReasonStale = "stale"
	// ReasonDuplicate: a delivery already accepted (same dedupe key).
	ReasonDuplicate = "duplicate"
	// ReasonBacklog: the journal backlog is full (503 with Retry-After).
	ReasonBacklog = "backlog"
	// ReasonMethod: an HTTP method the source does not accept (405).
	ReasonMethod = "method"
	// ReasonMediaType: an unsupported Content-Type (415).
	ReasonMediaType = "media_type"
	// ReasonForbidden: a client address or certificate not allowed (403).
	ReasonForbidden = "forbidden"
	// ReasonError: the event could not be stored (a 5xx other than a full
	// backlog, the journal closing).
	ReasonError = "error"
	// ReasonOther stands for any outcome not listed here.
	ReasonOther = "other"
)

var knownOutcomes = map[string]bool{
	OutcomeAccepted: true, ReasonAuth: true, ReasonParse: true, ReasonSize: true,
	ReasonStale: true, ReasonDuplicate: true, ReasonBacklog: true, ReasonMethod: true,
	ReasonMediaType: true, ReasonForbidden: true, ReasonError: true, ReasonOther: true,
}

// normOutcome bounds the outcome label to the known values.
func normOutcome(o string) string {
	if knownOutcomes[o] {
		return o
	}
	return ReasonOther
}

// Action results used as the result label of the invocation metrics, beyond
// the attempt statuses (succeeded, retryable, failed).
const (
	// ResultSkipped: the invocation never ran because an earlier action of
	// its firing failed.
	ResultSkipped = "skipped"
)

// errTextSkipped is the error dispatch records on a skipped invocation
// (dispatch.ErrTextSkipped; not imported to keep this package a leaf).
const errTextSkipped = "skipped: earlier action failed"

// SourceCount is one cumulative count kept by a source: how many events (or
// requests, for rejections before parsing) of one source ended with one
// outcome since the source started.
type SourceCount struct {
	// Source names the source, as "ruleset/source" or however the wiring
	// names sources in EventReceived: both are summed per name.
	Source  string
	Outcome string
	N       int64
}

// KafkaLag is the consumer lag of one partition of a Kafka source: messages
// behind the high watermark that are not yet durable in the journal
// (sources/kafka PartitionStats.Lag).
type KafkaLag struct {
	Source    string
	Topic     string
	Partition int
	Lag       int64
}

// Buckets of the histograms, in seconds.
var (
	// CommitBuckets span a journal group commit: 100µs to about 1.5s.
	CommitBuckets = prometheus.ExponentialBuckets(0.0001, 2.5, 11)
	// ActionBuckets span an action: 10ms to about 45min.
	ActionBuckets = prometheus.ExponentialBuckets(0.01, 3, 13)
)

// Metrics owns a registry and every Rulebook metric in it. Build it with
// New.
type Metrics struct {
	reg *prometheus.Registry

	processed   *prometheus.CounterVec
	commit      prometheus.Histogram
	firings     *prometheus.CounterVec
	attemptDur  *prometheus.HistogramVec
	invocations *prometheus.CounterVec
	invDur      *prometheus.HistogramVec
	retries     *prometheus.CounterVec
	deadLetters *prometheus.CounterVec

	events *eventCollector
	pulled *pullCollector
}

// New returns metrics registered in a new registry, with the Go runtime
// and process collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.processed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "events_processed_total",
		Help: "Journal records (and injected events) evaluated by the engine, by ruleset.",
	}, []string{"ruleset"})
	m.commit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "journal_commit_duration_seconds",
		Help:    "Time of one journal group commit, fsync included.",
		Buckets: CommitBuckets,
	})
	m.firings = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "rule_firings_total",
		Help: "Rule matches that fired.",
	}, []string{"ruleset", "rule"})
	m.attemptDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "action_attempt_duration_seconds",
		Help:    "Run time of one action attempt, by action type and attempt status (succeeded, retryable, failed).",
		Buckets: ActionBuckets,
	}, []string{"action", "result"})
	m.invocations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "action_invocations_total",
		Help: "Action invocations that reached a final state, by action type and result (succeeded, failed, skipped).",
	}, []string{"action", "result"})
	m.invDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "action_invocation_duration_seconds",
		Help:    "Run time of a finished invocation summed over its attempts, by action type and result.",
		Buckets: ActionBuckets,
	}, []string{"action", "result"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "action_retries_total",
		Help: "Failed attempts that were scheduled to run again.",
	}, []string{"action"})
	m.deadLetters = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "action_dead_letters_total",
		Help: "Invocations that failed for good after exhausting their retries.",
	}, []string{"action"})
	m.events = newEventCollector()
	m.pulled = &pullCollector{
		backlog: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "journal", "backlog"),
			"Events accepted by the journal and not yet processed by the engine.", nil, nil),
		restarts: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "plugin", "restarts_total"),
			"Times a plugin process was restarted after it died.", []string{"plugin"}, nil),
		lag: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "kafka", "consumer_lag"),
			"Messages behind the partition's high watermark not yet durable in the journal.",
			[]string{"source", "topic", "partition"}, nil),
		running: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "actions", "running"),
			"Action attempts running now.", nil, nil),
		evaluations: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "rule", "evaluations_total"),
			"Events and facts evaluated against a rule.", []string{"ruleset", "rule"}, nil),
		firings: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "firings", "active"),
			"Firings whose actions are not all final yet (running, waiting for a slot, a lock, a backoff or an earlier firing).", nil, nil),
	}
	m.reg.MustRegister(
		m.processed, m.commit, m.firings, m.attemptDur, m.invocations, m.invDur,
		m.retries, m.deadLetters, m.events, m.pulled,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Registry returns the registry, to add collectors or to gather in tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// EventReceived counts one event (or request) offered by a source and its
// outcome: OutcomeAccepted or one of the Reason constants.
func (m *Metrics) EventReceived(source, outcome string) {
	m.events.add(source, normOutcome(outcome), 1)
}

// SetSourceCountsFunc sets a function returning the cumulative counts that
// sources keep themselves (httpingest.Counts, kafka.Stats). They are added
// to what EventReceived counted, per source and outcome, so a source should
// be counted one way or the other, not both. Nil removes it.
//
// httpingest.Counts maps as Accepted → OutcomeAccepted, Duplicates →
// ReasonDuplicate, Stale → ReasonStale, Failed → ReasonError (5xx,
// backlog included) and Rejected → ReasonOther (4xx: the counts do not say
// which check failed; EventReceived from a per-request hook can).
func (m *Metrics) SetSourceCountsFunc(f func() []SourceCount) { m.events.pull.Store(&f) }

// Processed counts one event evaluated in a ruleset.
func (m *Metrics) Processed(ruleset string) { m.processed.WithLabelValues(ruleset).Inc() }

// SetEvaluationsFunc sets the function read for
// rulebook_rule_evaluations_total: the engines' own counters
// (engine.Engine.Stats), pulled at scrape time because counting through a
// label lookup per rule and event would cost more than the evaluation. Nil
// removes it.
func (m *Metrics) SetEvaluationsFunc(f func() []engine.RuleStats) { m.pulled.evalFn.Store(&f) }

// Firing counts one firing of a rule.
func (m *Metrics) Firing(ruleset, rule string) { m.firings.WithLabelValues(ruleset, rule).Inc() }

// ObserveFiring counts f; it fits engine.Options.OnFiring.
func (m *Metrics) ObserveFiring(f *engine.Firing, _ []engine.RenderedAction) {
	if f != nil {
		m.Firing(f.Ruleset, f.Rule)
	}
}

// ObserveCommit records the duration of one journal group commit.
func (m *Metrics) ObserveCommit(d time.Duration) { m.commit.Observe(d.Seconds()) }

// ActionResult records one invocation state as the dispatcher reports it
// (dispatch.Config.OnResult): a state with a new attempt (retrying,
// succeeded, failed) observes that attempt's duration by its status; a
// retrying state counts a retry unless the attempt was cut short by a
// shutdown (such attempts do not use up retries); a final state counts the
// invocation with its summed run time, and a dead letter when it failed
// after a retryable attempt (retries exhausted). Running states and nil are
// ignored.
func (m *Metrics) ActionResult(st *engine.InvocationState) {
	if st == nil || st.Invocation == nil || len(st.Attempts) == 0 {
		return
	}
	switch st.Status {
	case engine.StatusRetrying, engine.StatusSucceeded, engine.StatusFailed:
	default:
		return
	}
	action := st.Invocation.Action
	last := st.Attempts[len(st.Attempts)-1]
	skipped := st.Status == engine.StatusFailed && last.Error == errTextSkipped
	if !skipped {
		m.attemptDur.WithLabelValues(action, attemptResult(last.Status)).Observe(last.Duration.Seconds())
	}
	switch st.Status {
	case engine.StatusRetrying:
		if last.Details == nil || last.Details["interrupted"] != "shutdown" {
			m.retries.WithLabelValues(action).Inc()
		}
		return
	case engine.StatusFailed:
		if skipped {
			m.invocations.WithLabelValues(action, ResultSkipped).Inc()
			return
		}
		if last.Status == engine.Retryable {
			m.deadLetters.WithLabelValues(action).Inc()
		}
	}
	var total time.Duration
	for _, a := range st.Attempts {
		total += a.Duration
	}
	result := string(st.Status)
	m.invocations.WithLabelValues(action, result).Inc()
	m.invDur.WithLabelValues(action, result).Observe(total.Seconds())
}

// attemptResult bounds an attempt status to the three engine statuses.
func attemptResult(s engine.Status) string {
	switch s {
	case engine.Succeeded, engine.Retryable, engine.Failed:
		return string(s)
	}
	return string(engine.Failed)
}

// SetBacklogFunc sets the function read for rulebook_journal_backlog (the
// journal's Backlog). Nil removes the gauge.
func (m *Metrics) SetBacklogFunc(f func() float64) { m.pulled.backlogFn.Store(&f) }

// SetKafkaLagFunc sets the function read for rulebook_kafka_consumer_lag.
// Nil removes it.
func (m *Metrics) SetKafkaLagFunc(f func() []KafkaLag) { m.pulled.lagFn.Store(&f) }

// PluginRestarts sets the function read for rulebook_plugin_restarts_total:
// restarts by plugin name (plugins.Host.Restarts for each of Infos). Nil
// removes it.
func (m *Metrics) PluginRestarts(f func() map[string]int) { m.pulled.restartsFn.Store(&f) }

// SetDispatchFunc sets the function read for rulebook_actions_running
// (attempts running now) and rulebook_firings_active (firings with
// invocations not yet final in hand): dispatch.Dispatcher.Stats. Nil
// removes them.
func (m *Metrics) SetDispatchFunc(f func() (running, firings int)) { m.pulled.dispatchFn.Store(&f) }

// load returns the function stored in p, or nil when none was set or nil
// was set to remove it.
func load[F any](p *atomic.Pointer[F]) F {
	if fp := p.Load(); fp != nil {
		return *fp
	}
	var zero F
	return zero
}

// pullCollector reads the values components keep, at scrape time.
type pullCollector struct {
	backlog, restarts, lag, running, firings, evaluations *prometheus.Desc

	dispatchFn atomic.Pointer[func() (running, firings int)]
	backlogFn  atomic.Pointer[func() float64]
	lagFn      atomic.Pointer[func() []KafkaLag]
	restartsFn atomic.Pointer[func() map[string]int]
	evalFn     atomic.Pointer[func() []engine.RuleStats]
}

func (c *pullCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.backlog
	ch <- c.restarts
	ch <- c.lag
	ch <- c.running
	ch <- c.firings
	ch <- c.evaluations
}

func (c *pullCollector) Collect(ch chan<- prometheus.Metric) {
	if f := load(&c.backlogFn); f != nil {
		ch <- prometheus.MustNewConstMetric(c.backlog, prometheus.GaugeValue, f())
	}
	if f := load(&c.dispatchFn); f != nil {
		running, firings := f()
		ch <- prometheus.MustNewConstMetric(c.running, prometheus.GaugeValue, float64(running))
		ch <- prometheus.MustNewConstMetric(c.firings, prometheus.GaugeValue, float64(firings))
	}
	if f := load(&c.restartsFn); f != nil {
		for name, n := range f() {
			ch <- prometheus.MustNewConstMetric(c.restarts, prometheus.CounterValue, float64(n), name)
		}
	}
	if f := load(&c.evalFn); f != nil {
		// Several engines (one per Kafka partition) report the same rules:
		// their counts add up.
		sums := map[[2]string]int64{}
		var order [][2]string
		for _, st := range f() {
			k := [2]string{st.Ruleset, st.Rule}
			if _, seen := sums[k]; !seen {
				order = append(order, k)
			}
			sums[k] += st.Evaluated
		}
		for _, k := range order {
			ch <- prometheus.MustNewConstMetric(c.evaluations, prometheus.CounterValue, float64(sums[k]), k[:]...)
		}
	}
	if f := load(&c.lagFn); f != nil {
		seen := map[[3]string]bool{}
		for _, l := range f() {
			key := [3]string{l.Source, l.Topic, strconv.Itoa(l.Partition)}
			if seen[key] {
				continue // a duplicate label set would fail the whole scrape
			}
			seen[key] = true
			ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(l.Lag), key[:]...)
		}
	}
}

// eventCollector serves the three event counter families from the counts
// pushed with EventReceived plus those pulled from the sources.
type eventCollector struct {
	received, accepted, rejected *prometheus.Desc

	mu     sync.Mutex
	pushed map[[2]string]*atomic.Int64 // {source, outcome}
	pull   atomic.Pointer[func() []SourceCount]
}

func newEventCollector() *eventCollector {
	return &eventCollector{
		received: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "events", "received_total"),
			"Events (or requests rejected before they became events) offered by a source.", []string{"source"}, nil),
		accepted: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "events", "accepted_total"),
			"Events a source got accepted by the journal.", []string{"source"}, nil),
		rejected: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "events", "rejected_total"),
			"Events or requests a source did not accept, by reason (auth, parse, size, stale, duplicate, backlog, method, media_type, forbidden, error, other).",
			[]string{"source", "reason"}, nil),
		pushed: map[[2]string]*atomic.Int64{},
	}
}

func (c *eventCollector) add(source, outcome string, n int64) {
	key := [2]string{source, outcome}
	c.mu.Lock()
	v := c.pushed[key]
	if v == nil {
		v = new(atomic.Int64)
		c.pushed[key] = v
	}
	c.mu.Unlock()
	v.Add(n)
}

func (c *eventCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.received
	ch <- c.accepted
	ch <- c.rejected
}

func (c *eventCollector) Collect(ch chan<- prometheus.Metric) {
	totals := map[[2]string]int64{}
	c.mu.Lock()
	for k, v := range c.pushed {
		totals[k] += v.Load()
	}
	c.mu.Unlock()
	if f := load(&c.pull); f != nil {
		for _, sc := range f() {
			if sc.N > 0 {
				totals[[2]string{sc.Source, normOutcome(sc.Outcome)}] += sc.N
			}
		}
	}
	received := map[string]int64{}
	accepted := map[string]int64{}
	for k, n := range totals {
		source, outcome := k[0], k[1]
		received[source] += n
		if outcome == OutcomeAccepted {
			accepted[source] += n
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.rejected, prometheus.CounterValue, float64(n), source, outcome)
	}
	for source, n := range received {
		ch <- prometheus.MustNewConstMetric(c.received, prometheus.CounterValue, float64(n), source)
		ch <- prometheus.MustNewConstMetric(c.accepted, prometheus.CounterValue, float64(accepted[source]), source)
	}
}
