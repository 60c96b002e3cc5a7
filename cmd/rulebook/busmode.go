package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/rulebook-dev/rulebook/bus"
	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/kafkaconn"
)

var _ bus.PartitionHandler = (*partition)(nil)

// DefaultBusKey is the partition key of an event on the bus: its source and
// first host, so one host's events meet the same rule state.
const DefaultBusKey = `event.meta.source.name + "/" + (event.meta.hosts?.[0] ?? "")`

// busKeyFunc compiles the --bus-key expression into the producer's key.
func busKeyFunc(expr string) (bus.KeyFunc, error) {
	comp := &engine.Compiler{}
	t, err := comp.CompileTemplate("{{ " + expr + " }}")
	if err != nil {
		return nil, fmt.Errorf("--bus-key: %w", err)
	}
	return func(src engine.SourceRef, e engine.Entry) string {
		v, err := t.Render(engine.Env{Event: e.Event, Fact: e.Event})
		if err != nil || v == nil {
			return src.Ruleset + "/" + src.Name
		}
		return fmt.Sprint(v)
	}, nil
}

// partitions keeps one engine per Kafka partition this process owns, so the
// events of one key always meet the same rule state.
type partitions struct {
	a        *app
	topic    string
	mu       sync.Mutex
	rulesets []*engine.Ruleset
	owned    map[int]*partition
}

type partition struct {
	owner  *partitions
	id     int
	stream string // Record.Stream of its records
	eng    *engine.Engine
	cancel context.CancelFunc
	done   chan struct{}
}

func newPartitions(a *app, topic string, rulesets []*engine.Ruleset) *partitions {
	return &partitions{a: a, topic: topic, rulesets: rulesets, owned: map[int]*partition{}}
}

// open builds the engine of a newly assigned partition and its timer loop.
func (ps *partitions) open(id int) (bus.PartitionHandler, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	a := ps.a
	p := &partition{owner: ps, id: id, stream: bus.Stream(ps.topic, id), done: make(chan struct{})}
	opts := a.engineOptions(a.log.With().Str("component", "engine").Int("partition", id).Logger())
	opts.Stream = p.stream
	p.eng = engine.New(ps.rulesets, opts)
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go p.tick(ctx, a)
	ps.owned[id] = p
	a.log.Info().Int("partition", id).Msg("partition assigned")
	return p, nil
}

func (p *partition) Replay(ctx context.Context, rec engine.Record) error {
	return p.eng.Replay(ctx, rec)
}

func (p *partition) Process(ctx context.Context, rec engine.Record) error {
	p.owner.a.observeRecord(rec)
	return p.eng.Process(ctx, rec)
}

func (p *partition) Close() {
	p.cancel()
	<-p.done
	p.owner.mu.Lock()
	if p.owner.owned[p.id] == p {
		delete(p.owner.owned, p.id)
	}
	p.owner.mu.Unlock()
	p.owner.a.log.Info().Int("partition", p.id).Msg("partition released")
}

// engine returns the engine of the owned partition whose stream is stream,
// or nil.
func (ps *partitions) engine(stream string) *engine.Engine {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, p := range ps.owned {
		if p.stream == stream {
			return p.eng
		}
	}
	return nil
}

// engines returns the engines of the partitions owned now.
func (ps *partitions) engines() []*engine.Engine {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	out := make([]*engine.Engine, 0, len(ps.owned))
	for _, p := range ps.owned {
		out = append(out, p.eng)
	}
	return out
}

// replace swaps the rulesets of every owned partition and of those
// assigned later. Its summary counts rulesets and rules once, whether this
// process owns partitions or not, and the facts kept by all of them.
func (ps *partitions) replace(rulesets []*engine.Ruleset) engine.ReloadSummary {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	sum := engine.CompareRulesets(ps.rulesets, rulesets)
	ps.rulesets = rulesets
	for _, p := range ps.owned {
		sum.KeptFacts += p.eng.Replace(rulesets).KeptFacts
	}
	return sum
}

// tick fires the partition engine's timers when they are due.
func (p *partition) tick(ctx context.Context, a *app) {
	defer close(p.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if d, ok := p.eng.NextDeadline(); ok && !d.After(a.clock.Now()) {
				if err := p.eng.Tick(ctx); err != nil && ctx.Err() == nil {
					a.log.Error().Err(err).Int("partition", p.id).Msg("timer firing not stored")
				}
			}
		}
	}
}

// busSecurityFlags are the --bus-tls-* and --bus-sasl-* flags: how the bus
// connects to brokers that require TLS and SASL.
type busSecurityFlags struct {
	tls, insecure     bool
	ca, cert, key     string
	mech, user, passw string
}

func (f *busSecurityFlags) add(fs *flag.FlagSet) {
	fs.BoolVar(&f.tls, "bus-tls", false, "with --bus: connect to the brokers with TLS, trusting the system's CAs unless --bus-tls-ca (implied by the other --bus-tls-* flags)")
	fs.StringVar(&f.ca, "bus-tls-ca", "", "with --bus: PEM `FILE` (or PEM text, or ${env:..}/${file:..}) of the CAs that signed the brokers' certificates")
	fs.StringVar(&f.cert, "bus-tls-cert", "", "with --bus: PEM client certificate `FILE` for brokers that require one (with --bus-tls-key)")
	fs.StringVar(&f.key, "bus-tls-key", "", "with --bus: PEM client key `FILE` (or ${file:..}/${env:..}) of --bus-tls-cert")
	fs.BoolVar(&f.insecure, "bus-tls-insecure-skip-verify", false, "with --bus: do not verify the brokers' certificates (tests only)")
	fs.StringVar(&f.mech, "bus-sasl-mechanism", "", "with --bus: SASL `MECHANISM` of the brokers: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	fs.StringVar(&f.user, "bus-sasl-username", "", "with --bus: SASL user name (${env:..}/${file:..} allowed)")
	fs.StringVar(&f.passw, "bus-sasl-password", "", "with --bus: SASL password: ${env:NAME} or ${file:PATH}, resolved at start and never logged (a literal is visible to ps)")
}

// load checks the flags, resolves the secret references in them and loads
// the TLS material, so a mistake stops the start. bus says whether --bus
// was given: without it every one of these flags is an error. Errors name
// the flag and never hold the password.
func (f *busSecurityFlags) load(bus bool) (kafkaconn.Security, error) {
	set := []struct {
		name string
		set  bool
	}{
		{"--bus-tls", f.tls}, {"--bus-tls-ca", f.ca != ""}, {"--bus-tls-cert", f.cert != ""},
		{"--bus-tls-key", f.key != ""}, {"--bus-tls-insecure-skip-verify", f.insecure},
		{"--bus-sasl-mechanism", f.mech != ""}, {"--bus-sasl-username", f.user != ""},
		{"--bus-sasl-password", f.passw != ""},
	}
	if !bus {
		for _, s := range set {
			if s.set {
				return kafkaconn.Security{}, fmt.Errorf("%s needs --bus", s.name)
			}
		}
		return kafkaconn.Security{}, nil
	}
	var tlsArg *kafkaconn.TLS
	if f.tlsOn() {
		if (f.cert == "") != (f.key == "") {
			if f.cert == "" {
				return kafkaconn.Security{}, errors.New("--bus-tls-key needs --bus-tls-cert")
			}
			return kafkaconn.Security{}, errors.New("--bus-tls-cert needs --bus-tls-key")
		}
		if f.insecure && f.ca != "" {
			return kafkaconn.Security{}, errors.New("--bus-tls-insecure-skip-verify: not with --bus-tls-ca, which it would ignore")
		}
		tlsArg = &kafkaconn.TLS{InsecureSkipVerify: f.insecure}
		for _, v := range []struct {
			name string
			in   string
			out  *string
		}{{"--bus-tls-ca", f.ca, &tlsArg.CA}, {"--bus-tls-cert", f.cert, &tlsArg.Cert}, {"--bus-tls-key", f.key, &tlsArg.Key}} {
			s, err := engine.ResolveSecretString(v.in, nil)
			if err != nil {
				return kafkaconn.Security{}, fmt.Errorf("%s: %w", v.name, err)
			}
			*v.out = s
		}
	}
	var saslArg *kafkaconn.SASL
	if f.mech != "" || f.user != "" || f.passw != "" {
		mech := strings.ToLower(f.mech)
		switch {
		case f.mech == "":
			return kafkaconn.Security{}, errors.New("--bus-sasl-mechanism is required with --bus-sasl-username and --bus-sasl-password (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
		case mech != "plain" && mech != "scram-sha-256" && mech != "scram-sha-512":
			return kafkaconn.Security{}, fmt.Errorf("--bus-sasl-mechanism: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, not %q", f.mech)
		case f.user == "":
			return kafkaconn.Security{}, errors.New("--bus-sasl-username is required with --bus-sasl-mechanism")
		case f.passw == "":
			return kafkaconn.Security{}, errors.New("--bus-sasl-password is required with --bus-sasl-mechanism (use ${env:NAME} or ${file:PATH})")
		}
		user, err := engine.ResolveSecretString(f.user, nil)
		if err != nil {
			return kafkaconn.Security{}, fmt.Errorf("--bus-sasl-username: %w", err)
		}
		// The error of a reference names the reference, never its value.
		pw, err := engine.ResolveSecretString(f.passw, nil)
		if err != nil {
			return kafkaconn.Security{}, fmt.Errorf("--bus-sasl-password: %w", err)
		}
		if user == "" || pw == "" {
			which := "--bus-sasl-username"
			if pw == "" {
				which = "--bus-sasl-password"
			}
			return kafkaconn.Security{}, fmt.Errorf("%s: resolves to an empty value", which)
		}
		saslArg = &kafkaconn.SASL{Mechanism: mech, Username: user, Password: pw}
	}
	sec, err := kafkaconn.Load(tlsArg, saslArg)
	if err != nil {
		return kafkaconn.Security{}, busFlagError(err)
	}
	return sec, nil
}

// busFlagError renames kafkaconn's argument paths (tls.ca: ...) to flags.
func busFlagError(err error) error {
	for _, r := range []struct{ arg, flag string }{
		{"tls.ca", "--bus-tls-ca"}, {"tls.cert", "--bus-tls-cert"}, {"tls.key", "--bus-tls-key"}, {"sasl.mechanism", "--bus-sasl-mechanism"},
	} {
		if rest, ok := strings.CutPrefix(err.Error(), r.arg+": "); ok {
			if inner := errors.Unwrap(err); inner != nil {
				return fmt.Errorf("%s: %w", r.flag, inner)
			}
			return fmt.Errorf("%s: %s", r.flag, rest)
		}
	}
	return fmt.Errorf("--bus-tls-*/--bus-sasl-*: %w", err)
}

// hint points at the flags to check when the brokers refused the bus.
func (f *busSecurityFlags) hint(err error) string {
	switch {
	case errors.Is(err, kafkago.SASLAuthenticationFailed), errors.Is(err, kafkago.UnsupportedSASLMechanism):
		return " (check --bus-sasl-mechanism, --bus-sasl-username and --bus-sasl-password)"
	case strings.Contains(err.Error(), "certificate"), strings.Contains(err.Error(), "tls:"):
		return " (check --bus-tls-ca, --bus-tls-cert and --bus-tls-key)"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		// What a TLS listener or a SASL-only broker does to a client that
		// speaks plain Kafka to it.
		return " (the brokers closed the connection: do they require --bus-tls or --bus-sasl-*?)"
	}
	return ""
}

// mechanism is the SASL mechanism for the log ("" without SASL).
func (f *busSecurityFlags) mechanism() string { return strings.ToUpper(f.mech) }

// tlsOn says whether the flags ask for TLS: --bus-tls or any other
// --bus-tls-* flag, which implies it.
func (f *busSecurityFlags) tlsOn() bool {
	return f.tls || f.ca != "" || f.cert != "" || f.key != "" || f.insecure
}

// warn logs settings that work but expose the bus.
func (f *busSecurityFlags) warn(log zerolog.Logger) {
	if strings.EqualFold(f.mech, "plain") && !f.tlsOn() {
		log.Warn().Msg("--bus-sasl-mechanism PLAIN without --bus-tls sends the password unencrypted")
	}
	if f.insecure {
		log.Warn().Msg("--bus-tls-insecure-skip-verify: the brokers' certificates are not verified")
	}
}
