// Package kafkatest runs a real Kafka-protocol broker cluster in-process for
// tests and benchmarks, built on github.com/twmb/franz-go/pkg/kfake, and
// drives it with kcat (librdkafka) as an independent producer and consumer.
//
// A cluster listens on 127.0.0.1 only. kfake keeps everything in memory unless
// Options.DataDir is set (Start sets one when Options.Persist is true), in
// which case Restart stops every broker, drops every client connection and
// starts the cluster again on the same ports with its topics, records and
// committed group offsets intact: what a client sees when a broker restarts.
package kafkatest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Options configures a cluster. The zero value is three brokers, three
// partitions per seeded topic, random ports, no persistence.
type Options struct {
	// Brokers is the number of brokers (default 3). Ignored when Ports is set.
	Brokers int
	// Ports pins the brokers' ports on 127.0.0.1 (one per broker). Empty:
	// random free ports.
	Ports []int
	// Topics are created at start with Partitions partitions each.
	Topics []string
	// Partitions per seeded topic and per auto-created topic (default 3).
	Partitions int
	// AutoCreateTopics lets a metadata request or a produce create a topic,
	// as a default Kafka broker does.
	AutoCreateTopics bool
	// MinSessionTimeout is the smallest consumer-group session timeout the
	// brokers accept (default 100ms, so tests can run fast rebalances; a
	// real broker's default is 6s).
	MinSessionTimeout time.Duration
	// Persist keeps the cluster's state in a directory so Restart can bring
	// it back. Start uses t.TempDir() unless DataDir is set.
	Persist bool
	// DataDir is where state is persisted; setting it implies Persist.
	DataDir string
	// TLS, when set, makes every broker listen with TLS only.
	TLS *tls.Config
	// SASL, when set, requires SASL authentication with this user.
	SASL *SASLUser
}

// SASLUser is a user the brokers accept. Mechanism is PLAIN, SCRAM-SHA-256
// or SCRAM-SHA-512.
type SASLUser struct {
	Mechanism string
	Username  string
	Password  string
}

// Cluster is a running kfake cluster.
type Cluster struct {
	opts  Options
	mu    sync.Mutex
	kc    *kfake.Cluster
	addrs []string
	ports []int
	// stopped brokers by node ID, with the port they listened on.
	stopped map[int32]int
	closed  bool
	// proc is set for a cluster run as a separate process (StartProcess);
	// kc is then nil.
	proc *proc
}

var errProcess = errors.New("kafkatest: not available for a cluster run by StartProcess; use Start")

// Start runs a cluster for the test and closes it at the test's end.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Persist && opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	c, err := New(opts)
	if err != nil {
		t.Fatalf("kafkatest: start cluster: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// New runs a cluster until Close. Use Start in tests.
func New(opts Options) (*Cluster, error) {
	if opts.Brokers <= 0 {
		opts.Brokers = 3
	}
	if len(opts.Ports) > 0 {
		opts.Brokers = len(opts.Ports)
	}
	if opts.Partitions <= 0 {
		opts.Partitions = 3
	}
	if opts.MinSessionTimeout <= 0 {
		opts.MinSessionTimeout = 100 * time.Millisecond
	}
	if opts.DataDir != "" {
		opts.Persist = true
	}
	if opts.Persist && opts.DataDir == "" {
		return nil, errors.New("kafkatest: Persist needs a DataDir")
	}
	if opts.SASL != nil {
		switch opts.SASL.Mechanism {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		default:
			return nil, fmt.Errorf("kafkatest: unknown SASL mechanism %q", opts.SASL.Mechanism)
		}
	}
	c := &Cluster{opts: opts, stopped: map[int32]int{}}
	ports := opts.Ports
	if len(ports) == 0 {
		// Pin random ports now, so Restart can reuse them.
		var err error
		if ports, err = FreePorts(opts.Brokers); err != nil {
			return nil, err
		}
	}
	c.ports = append([]int(nil), ports...)
	if err := c.start(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Cluster) kfakeOpts() []kfake.Opt {
	o := []kfake.Opt{
		kfake.Ports(c.ports...),
		kfake.DefaultNumPartitions(c.opts.Partitions),
		kfake.GroupMinSessionTimeout(c.opts.MinSessionTimeout),
	}
	if len(c.opts.Topics) > 0 {
		o = append(o, kfake.SeedTopics(int32(c.opts.Partitions), c.opts.Topics...))
	}
	if c.opts.AutoCreateTopics {
		o = append(o, kfake.AllowAutoTopicCreation())
	}
	if c.opts.Persist {
		o = append(o, kfake.DataDir(c.opts.DataDir))
	}
	if c.opts.TLS != nil {
		o = append(o, kfake.TLS(c.opts.TLS))
	}
	if c.opts.SASL != nil {
		o = append(o, kfake.EnableSASL(), kfake.Superuser(c.opts.SASL.Mechanism, c.opts.SASL.Username, c.opts.SASL.Password))
	}
	return o
}

func (c *Cluster) start() error {
	var kc *kfake.Cluster
	var err error
	// A port freed a moment ago (FreePorts, or the previous incarnation in
	// Restart) may still be held briefly; retry within a deadline.
	deadline := time.Now().Add(5 * time.Second)
	for {
		kc, err = kfake.NewCluster(c.kfakeOpts()...)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("kafkatest: start kfake on ports %v: %w", c.ports, err)
	}
	c.kc = kc
	c.addrs = kc.ListenAddrs()
	c.stopped = map[int32]int{}
	return nil
}

// Addrs returns the brokers' host:port addresses, all on 127.0.0.1.
func (c *Cluster) Addrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.addrs...)
}

// Bootstrap returns the addresses joined by commas, as kcat -b and most
// clients take them.
func (c *Cluster) Bootstrap() string { return strings.Join(c.Addrs(), ",") }

// Kfake returns the underlying cluster, for the fault injection kfake offers
// (Control, MoveTopicPartition, ...). It changes across Restart. It is nil
// for a cluster run by StartProcess.
func (c *Cluster) Kfake() *kfake.Cluster {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.kc
}

// Close stops the cluster. It is safe to call more than once.
func (c *Cluster) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	if c.proc != nil {
		_ = c.stopProc()
		return
	}
	c.kc.Close()
}

// Restart stops every broker, which drops every client connection, and
// starts them again on the same ports with the persisted state. It needs
// Options.Persist. down is how long the cluster stays unreachable.
func (c *Cluster) Restart(down time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.opts.Persist {
		return errors.New("kafkatest: Restart needs Options.Persist")
	}
	if c.closed {
		return errors.New("kafkatest: cluster closed")
	}
	if c.proc != nil {
		if err := c.stopProc(); err != nil {
			return err
		}
		if down > 0 {
			time.Sleep(down)
		}
		return c.startProc()
	}
	c.kc.Close()
	if down > 0 {
		time.Sleep(down)
	}
	return c.start()
}

// StopBroker stops one broker's listener and moves partition leadership
// among the remaining ones, so clients must look up new leaders; kfake keeps
// serving connections already open to that broker (it has no per-broker
// connection teardown), so use Restart to drop connections. Node IDs are
// 0..Brokers-1.
func (c *Cluster) StopBroker(node int32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc != nil {
		return errProcess
	}
	if _, ok := c.stopped[node]; ok {
		return fmt.Errorf("kafkatest: broker %d already stopped", node)
	}
	if node < 0 || int(node) >= len(c.ports) {
		return fmt.Errorf("kafkatest: no broker %d", node)
	}
	if err := c.kc.RemoveNode(node); err != nil {
		return fmt.Errorf("kafkatest: stop broker %d: %w", node, err)
	}
	c.stopped[node] = c.ports[node]
	c.addrs = c.kc.ListenAddrs()
	return nil
}

// StartBroker starts a broker stopped by StopBroker again on its port.
func (c *Cluster) StartBroker(node int32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc != nil {
		return errProcess
	}
	port, ok := c.stopped[node]
	if !ok {
		return fmt.Errorf("kafkatest: broker %d is not stopped", node)
	}
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, _, err = c.kc.AddNode(node, port); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("kafkatest: start broker %d on port %d: %w", node, port, err)
	}
	delete(c.stopped, node)
	c.addrs = c.kc.ListenAddrs()
	return nil
}

// ShuffleLeaders gives every partition a new leader, as a leader election
// after a broker failure would.
// It panics for a cluster run by StartProcess.
func (c *Cluster) ShuffleLeaders() {
	kc := c.Kfake()
	if kc == nil {
		panic(errProcess)
	}
	kc.ShufflePartitionLeaders()
}

// CreateTopic creates a topic with the given number of partitions (<= 0:
// Options.Partitions).
func (c *Cluster) CreateTopic(ctx context.Context, topic string, partitions int) error {
	if partitions <= 0 {
		partitions = c.opts.Partitions
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	req := kmsgCreateTopics(topic, int32(partitions))
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("kafkatest: create topic %q: %w", topic, err)
	}
	for _, tr := range resp.Topics {
		if err := kerrOf(tr.ErrorCode); err != nil {
			return fmt.Errorf("kafkatest: create topic %q: %w", topic, err)
		}
	}
	return nil
}

// Record is one message for Produce, or one that Consume read.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   map[string]string
	Timestamp time.Time
}

// Produce writes records synchronously with acks=all through franz-go's
// client (fast; for pre-filling topics). A record whose Partition is >= 0 and
// whose Topic is set goes to that partition; Partition < 0 lets the key
// decide. Records without a Topic go to topic.
func (c *Cluster) Produce(ctx context.Context, topic string, recs ...Record) error {
	cl, err := c.client(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	defer cl.Close()
	hashed, err := c.client()
	if err != nil {
		return err
	}
	defer hashed.Close()
	var manual, byKey []*kgo.Record
	for _, r := range recs {
		kr := &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Partition: r.Partition, Timestamp: r.Timestamp}
		if kr.Topic == "" {
			kr.Topic = topic
		}
		for k, v := range r.Headers {
			kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
		if r.Partition >= 0 {
			manual = append(manual, kr)
		} else {
			byKey = append(byKey, kr)
		}
	}
	if len(manual) > 0 {
		if err := cl.ProduceSync(ctx, manual...).FirstErr(); err != nil {
			return fmt.Errorf("kafkatest: produce: %w", err)
		}
	}
	if len(byKey) > 0 {
		if err := hashed.ProduceSync(ctx, byKey...).FirstErr(); err != nil {
			return fmt.Errorf("kafkatest: produce: %w", err)
		}
	}
	return nil
}

// EndOffsets returns the high watermark of every partition of topic.
func (c *Cluster) EndOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	cl, err := c.client()
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	return listEnd(ctx, cl, topic)
}

// CommittedOffsets returns the offsets group has committed for topic, by
// partition (partitions without a commit are absent).
func (c *Cluster) CommittedOffsets(ctx context.Context, group, topic string) (map[int32]int64, error) {
	cl, err := c.client()
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	return fetchCommitted(ctx, cl, group, topic)
}

func (c *Cluster) client(extra ...kgo.Opt) (*kgo.Client, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(c.Addrs()...), kgo.RequiredAcks(kgo.AllISRAcks())}
	if c.opts.TLS != nil {
		// The harness trusts its own cluster: it only ever dials 127.0.0.1.
		opts = append(opts, kgo.DialTLSConfig(&tls.Config{InsecureSkipVerify: true})) //nolint:gosec // loopback test cluster
	}
	if c.opts.SASL != nil {
		opts = append(opts, kgo.SASL(saslMechanism(c.opts.SASL)))
	}
	opts = append(opts, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafkatest: client: %w", err)
	}
	return cl, nil
}

// FreePorts returns n distinct TCP ports that were free on 127.0.0.1 a
// moment ago.
func FreePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("kafkatest: free port: %w", err)
		}
		ls = append(ls, l)
		_, p, _ := net.SplitHostPort(l.Addr().String())
		port, _ := strconv.Atoi(p)
		ports = append(ports, port)
	}
	return ports, nil
}
