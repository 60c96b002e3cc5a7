// Package kafka is the `kafka` event source: it consumes one or more topics
// (or every topic matching a pattern) in a consumer group with
// github.com/segmentio/kafka-go and emits one event per message.
//
// Delivery is at least once. A message is fetched (never auto-committed),
// emitted to the engine, and its offset is committed only once the Emitter
// has made it durable and every message fetched before it from the same
// partition is durable too. Commits go out in batches every commit_interval
// and on shutdown. After a crash the group resumes from the last commit; each
// event carries DedupeKey "topic/partition/offset" so the journal drops what
// it already holds. An Emitter error (a full backlog, a shutdown, a storage
// failure) is retried with backoff for the same messages: nothing is skipped
// and nothing past them is committed.
//
// Partitions are processed independently: each has a lane that emits its
// messages in order, in batches of up to batch_size, so one partition waiting
// on a retry does not hold the others back, until its lane's buffer (1024
// messages, or twice batch_size) is full: then fetching pauses for all.
//
// A message whose value cannot be decoded (invalid JSON in json format,
// invalid UTF-8 in text format) is neither dropped nor allowed to stop the
// consumer: it is logged at warn with the reason, forwarded to
// dead_letter_topic when one is set (original key, value and headers plus
// rulebook-reject-reason and rulebook-origin-* headers), and emitted as a
// rejected event,
//
//	{"rejected": {"reason": "...", "raw": "...", "size": N}, "meta": {"kafka": {...}}}
//
// so a rule can see it (`event.rejected is defined`) and the audit trail
// records it. Only then is its offset committable. Emitting it, rather than
// only logging it, is the choice: a rejected message is an event an operator
// may want to act on, and the journal is where "never silently dropped" can
// be checked.
//
// Arguments:
//
//	sources:
//	  - name: orders
//	    kafka:
//	      brokers: [kafka1:9092, kafka2:9092]  # or "kafka1:9092,kafka2:9092"
//	      topic: orders                        # or topics: [a, b], or topic_pattern: "^alerts-"
//	      group_id: rulebook-orders            # default rulebook.<ruleset>.<source name>
//	      offset: earliest                     # where a new group starts: earliest (default) or latest
//	      format: json                         # json (default) or text
//	      dead_letter_topic: orders-rejected   # optional
//	      dedupe: true                         # DedupeKey topic/partition/offset (default true)
//	      tls: {ca: /etc/kafka/ca.pem, cert: client.pem, key: client-key.pem}  # or tls: true
//	      sasl: {mechanism: scram-sha-512, username: rulebook, password: "${env:KAFKA_PASSWORD}"}
//
// ca, cert and key are file paths or PEM text (a ${file:...} reference
// resolves to the text); tls also takes insecure_skip_verify. Tuning, with
// defaults: session_timeout 30s, rebalance_timeout 30s, heartbeat_interval
// 3s, join_group_backoff 2s, commit_interval 1s, max_wait 500ms (kafka-go's
// fetch deadline equals it, so much smaller values cause i/o timeouts on idle
// partitions), topic_refresh_interval 30s (topic_pattern and partition
// changes), lag_log_interval 30s, batch_size 256 (events per Emit),
// retry_backoff 100ms, max_retry_backoff 5s. Durations are strings ("2s") or
// seconds.
//
// The event:
//
//	{"body": <decoded value>,
//	 "meta": {"kafka": {"topic": "orders", "partition": 0, "offset": 42, "key": "...",
//	                    "headers": {"name": "value"}, "timestamp": "<RFC 3339>"},
//	          "headers": {"name": "value"}, "source": {...}, "uuid": "...", "received_at": "..."}}
//
// A repeated header name keeps its last value; meta.headers repeats
// meta.kafka.headers, where Event-Driven Ansible's kafka source puts them. Wrong credentials or an
// untrusted certificate end Run with an error; unreachable brokers are
// waited for.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/kafkaconn"
)

// Type is the source type in rulebooks.
const Type = "kafka"

var _ engine.Source = (*Source)(nil)

// Spec returns the kafka source's spec for the registry.
func Spec() engine.SourceSpec {
	return engine.SourceSpec{
		Type:        Type,
		Description: "consume Kafka topics in a consumer group, at least once",
		Check:       Check,
		Schema:      Schema(),
		PathArgs:    kafkaconn.PathArgs(),
		New: func(cfg engine.SourceConfig) (engine.Source, error) {
			return New(cfg)
		},
	}
}

// Check validates the source's arguments without touching the network or
// the file system. Errors are *engine.ArgError.
func Check(args map[string]any) error {
	_, err := parseConfig(args, false)
	return err
}

// Source consumes Kafka. Build it with New; Run it once.
type Source struct {
	cfg     config
	ref     engine.SourceRef
	log     zerolog.Logger
	clock   engine.Clock
	sec     kafkaconn.Security
	tracker *tracker

	fetched, redelivered, emitted, duplicates atomic.Int64
	rejected, deadLettered, retries           atomic.Int64
	commits, commitErrors, rebalances         atomic.Int64
	readerLag                                 atomic.Int64

	running atomic.Bool
	mu      sync.Mutex
	reader  *kafkago.Reader
	topics  []string
}

// New builds the source from its rulebook entry. It loads TLS material but
// does not connect; Run does.
func New(sc engine.SourceConfig) (*Source, error) {
	cfg, err := parseConfig(sc.Args, true)
	if err != nil {
		return nil, err
	}
	if cfg.GroupID == "" {
		cfg.GroupID = "rulebook." + sc.Ruleset + "." + sc.Name
	}
	sec, err := kafkaconn.Load(cfg.TLS, cfg.SASL)
	if err != nil {
		return nil, err
	}
	clock := sc.Clock
	if clock == nil {
		clock = engine.SystemClock{}
	}
	typ := sc.Type
	if typ == "" {
		typ = Type
	}
	return &Source{
		cfg:     cfg,
		ref:     engine.SourceRef{Ruleset: sc.Ruleset, Name: sc.Name, Type: typ},
		log:     sc.Log,
		clock:   clock,
		sec:     sec,
		tracker: newTracker(),
		topics:  cfg.Topics,
	}, nil
}

// GroupID is the consumer group the source joins.
func (s *Source) GroupID() string { return s.cfg.GroupID }

// Stats is a snapshot of the source's counters, for logs and metrics.
type Stats struct {
	GroupID string   `json:"group_id"`
	Topics  []string `json:"topics"`
	// Fetched counts messages fetched; Redelivered those fetched again
	// after a rebalance or reconnect that were already done or pending.
	Fetched     int64 `json:"fetched"`
	Redelivered int64 `json:"redelivered"`
	// Emitted counts events the Emitter accepted; Duplicates those it
	// recognised by DedupeKey.
	Emitted    int64 `json:"emitted"`
	Duplicates int64 `json:"duplicates"`
	// Rejected counts undecodable messages (emitted as rejected events);
	// DeadLettered those forwarded to the dead-letter topic.
	Rejected     int64 `json:"rejected"`
	DeadLettered int64 `json:"dead_lettered"`
	// Retries counts Emit and dead-letter attempts that failed and were
	// retried.
	Retries      int64 `json:"retries"`
	Commits      int64 `json:"commits"`
	CommitErrors int64 `json:"commit_errors"`
	Rebalances   int64 `json:"rebalances"`
	// Lag is kafka-go's reader lag (messages behind the high watermark of
	// the partition last read); Partitions has the lag of each partition.
	Lag        int64            `json:"lag"`
	InFlight   int              `json:"in_flight"`
	Partitions []PartitionStats `json:"partitions"`
}

// Stats returns the source's counters. It is safe to call at any time.
func (s *Source) Stats() Stats {
	s.mu.Lock()
	topics := append([]string(nil), s.topics...)
	s.mu.Unlock()
	return Stats{
		GroupID:      s.cfg.GroupID,
		Topics:       topics,
		Fetched:      s.fetched.Load(),
		Redelivered:  s.redelivered.Load(),
		Emitted:      s.emitted.Load(),
		Duplicates:   s.duplicates.Load(),
		Rejected:     s.rejected.Load(),
		DeadLettered: s.deadLettered.Load(),
		Retries:      s.retries.Load(),
		Commits:      s.commits.Load(),
		CommitErrors: s.commitErrors.Load(),
		Rebalances:   s.rebalances.Load(),
		Lag:          s.readerLag.Load(),
		InFlight:     s.tracker.inFlight(),
		Partitions:   s.tracker.stats(),
	}
}

// Run consumes until ctx ends, then commits what is durable, leaves the group
// and returns nil. It returns an error only when the source cannot go on: the
// brokers refuse the credentials or the TLS handshake. Brokers that are
// down are waited for.
func (s *Source) Run(ctx context.Context, out engine.Emitter) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("kafka source: already running")
	}
	defer s.running.Store(false)

	transport := s.sec.Transport()
	// Metadata is cached this long; topic_pattern refreshes need it
	// fresher than kafka-go's default of 6s.
	transport.MetadataTTL = min(s.cfg.TopicRefresh, 6*time.Second)
	defer transport.CloseIdleConnections()

	if err := s.preflight(ctx); err != nil {
		return err
	}

	var dlq *kafkago.Writer
	if s.cfg.DeadLetter != "" {
		dlq = &kafkago.Writer{
			Addr:         kafkago.TCP(s.cfg.Brokers...),
			Topic:        s.cfg.DeadLetter,
			Balancer:     &kafkago.Murmur2Balancer{}, // keys land where the Java client would put them
			RequiredAcks: kafkago.RequireAll,
			BatchTimeout: 5 * time.Millisecond,
			Transport:    transport,
		}
		defer dlq.Close()
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	var lanesWG, commitWG sync.WaitGroup
	commitWG.Add(1)
	go func() {
		defer commitWG.Done()
		s.commitLoop(runCtx)
	}()
	lanes := map[topicPartition]chan kafkago.Message{}
	p := &pipeline{s: s, out: out, dlq: dlq, runCtx: runCtx, lanes: lanes, wg: &lanesWG}

	for runCtx.Err() == nil {
		topics := s.cfg.Topics
		if s.cfg.TopicPattern != nil {
			var ok bool
			if topics, ok = s.waitForTopics(runCtx, transport); !ok {
				break
			}
		}
		r := s.newReader(topics)
		s.mu.Lock()
		s.reader, s.topics = r, topics
		s.mu.Unlock()
		s.log.Info().Strs("topics", topics).Str("group_id", s.cfg.GroupID).Msg("kafka consumer starting")

		incCtx, incCancel := context.WithCancel(runCtx)
		watchDone := make(chan struct{})
		if s.cfg.TopicPattern != nil {
			go func() {
				defer close(watchDone)
				s.watchTopics(incCtx, transport, topics, incCancel)
			}()
		} else {
			close(watchDone)
		}
		p.fetchLoop(incCtx, r)
		incCancel()
		<-watchDone
		if runCtx.Err() != nil {
			break
		}
		// The topic set changed: commit what is durable through this reader,
		// then join again with the new topics.
		s.commit(context.Background())
		s.mu.Lock()
		s.reader = nil
		s.mu.Unlock()
		closing := time.Now()
		if err := r.Close(); err != nil {
			s.log.Warn().Err(err).Msg("kafka reader close")
		}
		s.log.Info().Dur("took", time.Since(closing)).Msg("kafka reader closed for the new topic set")
	}

	cancel()
	lanesWG.Wait()
	commitWG.Wait()
	// Final commit of everything durable, then leave the group.
	s.commit(context.Background())
	s.mu.Lock()
	r := s.reader
	s.reader = nil
	s.mu.Unlock()
	if r != nil {
		if err := r.Close(); err != nil {
			s.log.Warn().Err(err).Msg("kafka reader close")
		}
	}
	st := s.Stats()
	s.log.Info().Int64("fetched", st.Fetched).Int64("emitted", st.Emitted).Int64("rejected", st.Rejected).
		Int("in_flight", st.InFlight).Msg("kafka consumer stopped")
	return nil
}

// preflight connects to the brokers (TLS handshake and SASL included) until
// one accepts, so wrong credentials or an untrusted certificate end Run with
// an error instead of an endless retry. Unreachable brokers are retried.
func (s *Source) preflight(ctx context.Context) error {
	backoff := s.cfg.RetryBackoff
	d := s.sec.Dialer()
	for attempt := 1; ; attempt++ {
		var err error
		for _, b := range s.cfg.Brokers {
			var conn *kafkago.Conn
			if conn, err = d.DialContext(ctx, "tcp", b); err == nil {
				// One round trip: with TLS 1.3 a broker refuses a client
				// certificate only after the client's side of the
				// handshake is done.
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				_, err = conn.ApiVersions()
				conn.Close()
				if err == nil {
					return nil
				}
			}
			if kafkaconn.SecurityError(err) {
				break
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if kafkaconn.SecurityError(err) {
			return fmt.Errorf("kafka source %q: brokers %q: %w", s.ref.Name, s.cfg.Brokers, err)
		}
		if attempt == 1 || attempt%10 == 0 {
			s.log.Warn().Err(err).Strs("brokers", s.cfg.Brokers).Int("attempt", attempt).Msg("kafka brokers unreachable, retrying")
		}
		if !sleepCtx(ctx, backoff) {
			return nil
		}
		backoff = min(backoff*2, s.cfg.MaxRetryBackoff)
	}
}

func (s *Source) metadata(ctx context.Context, transport *kafkago.Transport) (*kafkago.MetadataResponse, error) {
	cl := &kafkago.Client{Addr: kafkago.TCP(s.cfg.Brokers...), Timeout: 10 * time.Second, Transport: transport}
	return cl.Metadata(ctx, &kafkago.MetadataRequest{})
}

// matchingTopics lists the topics that match topic_pattern, sorted.
func (s *Source) matchingTopics(ctx context.Context, transport *kafkago.Transport) ([]string, error) {
	md, err := s.metadata(ctx, transport)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range md.Topics {
		if t.Error == nil && !t.Internal && s.cfg.TopicPattern.MatchString(t.Name) {
			out = append(out, t.Name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// waitForTopics resolves topic_pattern until at least one topic matches.
func (s *Source) waitForTopics(ctx context.Context, transport *kafkago.Transport) ([]string, bool) {
	warned := false
	for {
		topics, err := s.matchingTopics(ctx, transport)
		if err == nil && len(topics) > 0 {
			return topics, true
		}
		if !warned {
			ev := s.log.Warn().Str("topic_pattern", s.cfg.TopicPattern.String())
			if err != nil {
				ev = ev.Err(err)
			}
			ev.Msg("no topic matches topic_pattern yet, waiting")
			warned = true
		}
		if !sleepCtx(ctx, s.cfg.TopicRefresh) {
			return nil, false
		}
	}
}

// watchTopics resolves topic_pattern every topic_refresh_interval and calls
// changed when the set of matching topics differs from current.
func (s *Source) watchTopics(ctx context.Context, transport *kafkago.Transport, current []string, changed func()) {
	t := time.NewTicker(s.cfg.TopicRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		topics, err := s.matchingTopics(ctx, transport)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn().Err(err).Msg("kafka topic refresh failed")
			}
			continue
		}
		if len(topics) > 0 && !equalStrings(topics, current) {
			s.log.Info().Strs("topics", topics).Strs("previous", current).Msg("kafka topics matching topic_pattern changed")
			changed()
			return
		}
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (s *Source) newReader(topics []string) *kafkago.Reader {
	log := s.log
	return kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:                s.cfg.Brokers,
		GroupID:                s.cfg.GroupID,
		GroupTopics:            topics,
		Dialer:                 s.sec.Dialer(),
		MinBytes:               1,
		MaxBytes:               10 << 20,
		MaxWait:                s.cfg.MaxWait,
		HeartbeatInterval:      s.cfg.HeartbeatInterval,
		SessionTimeout:         s.cfg.SessionTimeout,
		RebalanceTimeout:       s.cfg.RebalanceTimeout,
		JoinGroupBackoff:       s.cfg.JoinGroupBackoff,
		CommitInterval:         0, // synchronous: CommitMessages returns the broker's answer
		StartOffset:            s.cfg.StartOffset,
		WatchPartitionChanges:  true,
		PartitionWatchInterval: s.cfg.TopicRefresh,
		ReadBackoffMin:         50 * time.Millisecond,
		ReadBackoffMax:         time.Second,
		Logger:                 kafkaconn.Log(log, zerolog.DebugLevel),
		ErrorLogger:            kafkaconn.Log(log, zerolog.WarnLevel),
	})
}

// minLaneBuffer is the least number of messages a partition's lane holds
// before fetching pauses for every partition (kafka-go's group reader
// delivers all partitions through one channel, so one cannot be paused
// alone).
const minLaneBuffer = 1024

// pipeline moves fetched messages into per-partition lanes.
type pipeline struct {
	s   *Source
	out engine.Emitter
	dlq *kafkago.Writer
	// runCtx ends with the source; lanes live that long, across reader
	// incarnations (a topic_pattern change starts a new reader).
	runCtx context.Context
	lanes  map[topicPartition]chan kafkago.Message // owned by fetchLoop's goroutine
	wg     *sync.WaitGroup
}

func (p *pipeline) fetchLoop(ctx context.Context, r *kafkago.Reader) {
	s := p.s
	backoff := s.cfg.RetryBackoff
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn().Err(err).Msg("kafka fetch failed, retrying")
			if !sleepCtx(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, s.cfg.MaxRetryBackoff)
			continue
		}
		backoff = s.cfg.RetryBackoff
		s.fetched.Add(1)
		tp := topicPartition{Topic: m.Topic, Partition: m.Partition}
		if !s.tracker.fetched(tp, m.Offset, m.HighWaterMark) {
			s.redelivered.Add(1)
			continue
		}
		lane := p.lanes[tp]
		if lane == nil {
			lane = make(chan kafkago.Message, max(2*s.cfg.BatchSize, minLaneBuffer))
			p.lanes[tp] = lane
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.runLane(tp, lane)
			}()
		}
		select {
		case lane <- m:
		case <-ctx.Done():
			return
		}
	}
}

// runLane emits one partition's messages in order. It runs until the
// source's run context ends, across reader restarts.
func (p *pipeline) runLane(tp topicPartition, ch chan kafkago.Message) {
	runCtx := p.runCtx
	batch := make([]kafkago.Message, 0, p.s.cfg.BatchSize)
	for {
		batch = batch[:0]
		select {
		case m := <-ch:
			batch = append(batch, m)
		case <-runCtx.Done():
			return
		}
	fill:
		for len(batch) < p.s.cfg.BatchSize {
			select {
			case m := <-ch:
				batch = append(batch, m)
			default:
				break fill
			}
		}
		if !p.process(runCtx, tp, batch) {
			return
		}
	}
}
