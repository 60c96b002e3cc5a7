// Package kafka is the `kafka` action: it produces one templated message
// (key, value, headers) to a topic with acks=all, for handing events to
// other systems or chaining rulebooks.
//
//	actions:
//	  - kafka:
//	      brokers: [kafka1:9092, kafka2:9092]   # or "kafka1:9092,kafka2:9092"
//	      topic: remediation
//	      key: "{{ event.meta.hosts[0] }}"      # optional
//	      value: {host: "{{ event.alert.labels.instance }}", action: restart}
//	      headers: {origin: rulebook}           # optional
//	      tls: {ca: /etc/kafka/ca.pem}          # optional, as the kafka source's
//	      sasl: {mechanism: plain, username: rb, password: "${env:KAFKA_PASSWORD}"}
//
// A value that is a mapping or a list is sent as JSON; a string as is. Every
// message also carries the header rulebook-invocation-id (the invocation's
// stable ID) so a consumer can drop the repeats a retry may produce.
//
// Errors: arguments that are invalid once rendered fail permanently; broker,
// network and timeout errors are retryable, except Kafka errors that no
// retry can fix (a message too large, an invalid topic, an authorization
// failure).
package kafka

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/kafkaconn"
)

// Type is the action type in rulebooks.
const Type = "kafka"

// HeaderInvocationID is the header naming the invocation that produced a
// message.
const HeaderInvocationID = "rulebook-invocation-id"

var _ engine.Action = (*Producer)(nil)

// Spec returns the kafka action's spec for the registry.
func Spec() engine.ActionSpec {
	return engine.ActionSpec{
		Type:        Type,
		Description: "produce a message to a Kafka topic (acks=all)",
		Check:       Check,
		Schema:      Schema(),
		PathArgs:    kafkaconn.PathArgs(),
		New: func(env engine.ActionEnv) (engine.Action, error) {
			return New(env), nil
		},
	}
}

// Check validates the arguments at load time; template strings are
// accepted wherever a rendered value could be valid. Errors are
// *engine.ArgError.
func Check(a map[string]any) error {
	_, err := parseArgs(a, false)
	return err
}

// Producer runs kafka actions. It keeps one writer per brokers, topic and
// security settings; Close closes them.
type Producer struct {
	log     zerolog.Logger
	mu      sync.Mutex
	writers map[string]*kafkago.Writer
	closed  bool
}

// New returns a Producer.
func New(env engine.ActionEnv) *Producer {
	return &Producer{log: env.Log, writers: map[string]*kafkago.Writer{}}
}

// Run produces one message and waits for every in-sync replica to have it.
func (p *Producer) Run(ctx context.Context, inv *engine.Invocation) engine.Result {
	a, err := parseArgs(inv.Args, true)
	if err != nil {
		return engine.Failure("%s", inv.Redact(err.Error()))
	}
	w, err := p.writer(a)
	if err != nil {
		if errors.Is(err, errClosed) {
			return engine.RetryableFailure("%v", err)
		}
		return engine.Failure("%s", inv.Redact(err.Error()))
	}
	msg := kafkago.Message{Key: a.Key, Value: a.Value}
	names := make([]string, 0, len(a.Headers))
	for k := range a.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	hasID := false
	for _, k := range names {
		msg.Headers = append(msg.Headers, kafkago.Header{Key: k, Value: []byte(a.Headers[k])})
		hasID = hasID || k == HeaderInvocationID
	}
	if !hasID && inv.ID != "" {
		msg.Headers = append(msg.Headers, kafkago.Header{Key: HeaderInvocationID, Value: []byte(inv.ID)})
	}
	start := time.Now()
	if err := w.WriteMessages(ctx, msg); err != nil {
		res := classify(err)
		res.Error = inv.Redact(fmt.Sprintf("produce to topic %q: %v", a.Topic, err))
		return res
	}
	return engine.Result{
		Status: engine.Succeeded,
		Output: fmt.Sprintf("produced %d bytes to topic %q", len(a.Value), a.Topic),
		Details: map[string]any{
			"topic":       a.Topic,
			"key":         string(a.Key),
			"bytes":       len(a.Value),
			"duration_ms": time.Since(start).Milliseconds(),
		},
	}
}

var errClosed = errors.New("kafka action closed: shutting down")

func (p *Producer) writer(a args) (*kafkago.Writer, error) {
	key := a.writerKey()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errClosed
	}
	if w := p.writers[key]; w != nil {
		return w, nil
	}
	sec, err := kafkaconn.Load(a.TLS, a.SASL)
	if err != nil {
		return nil, err
	}
	log := p.log
	w := &kafkago.Writer{
		Addr:         kafkago.TCP(a.Brokers...),
		Topic:        a.Topic,
		Balancer:     &kafkago.Murmur2Balancer{}, // the Java client's partitioning, so keys land where other producers put them
		RequiredAcks: kafkago.RequireAll,
		MaxAttempts:  3,
		BatchTimeout: 2 * time.Millisecond,
		Transport:    sec.Transport(),
		ErrorLogger:  kafkaconn.Log(log, zerolog.DebugLevel),
	}
	p.writers[key] = w
	return w, nil
}

// Close closes every writer, flushing nothing that was not already
// acknowledged (Run is synchronous). Later Runs are retryable failures. It
// is safe to call more than once.
func (p *Producer) Close() error {
	p.mu.Lock()
	ws := p.writers
	p.writers = map[string]*kafkago.Writer{}
	p.closed = true
	p.mu.Unlock()
	var errs []error
	for _, w := range ws {
		if err := w.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// classify says whether retrying a failed write can help.
func classify(err error) engine.Result {
	var we kafkago.WriteErrors
	if errors.As(err, &we) {
		for _, e := range we {
			if e != nil {
				err = e
				break
			}
		}
	}
	if kafkaconn.PermanentWriteError(err) {
		return engine.Result{Status: engine.Failed}
	}
	// Anything else (a network error, an ended context, an EOF from a
	// restarting broker, a refused connection) is a broker or network
	// problem: try again.
	return engine.Result{Status: engine.Retryable}
}
