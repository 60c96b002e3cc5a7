package kafkatest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Kcat returns the path of kcat. Under CI (CI=true) a missing kcat fails the
// test; elsewhere it skips it. test/setup.sh installs it (Debian "kcat").
func Kcat(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("kafkatest: kcat not found (install it with test/setup.sh): %v", err)
	}
	t.Skipf("kafkatest: kcat not found, skipping (install it with test/setup.sh): %v", err)
	return ""
}

// Delimiters kcat uses in KcatProduce: values and keys must not contain
// them.
const (
	kcatMsgDelim = "\x1e"
	kcatKeyDelim = "\x1f"
)

func (c *Cluster) kcatArgs() []string {
	args := []string{"-b", c.Bootstrap(), "-q"}
	if c.opts.TLS != nil {
		args = append(args, "-X", "security.protocol=ssl", "-X", "enable.ssl.certificate.verification=false")
	}
	if c.opts.SASL != nil {
		proto := "sasl_plaintext"
		if c.opts.TLS != nil {
			proto = "sasl_ssl"
		}
		args = append(args, "-X", "security.protocol="+proto,
			"-X", "sasl.mechanisms="+c.opts.SASL.Mechanism,
			"-X", "sasl.username="+c.opts.SASL.Username,
			"-X", "sasl.password="+c.opts.SASL.Password)
	}
	return args
}

// KcatProduce produces recs to topic with kcat and acks=all, failing the test
// on error. Records are produced in order; consecutive records with the same
// headers and partition share one kcat run. A record's Partition < 0 lets
// kcat's partitioner (by key) choose. A nil Key produces no key.
func (c *Cluster) KcatProduce(t testing.TB, topic string, recs ...Record) {
	t.Helper()
	kcat := Kcat(t)
	for i := 0; i < len(recs); {
		j := i + 1
		for j < len(recs) && sameBatch(recs[i], recs[j]) {
			j++
		}
		c.kcatProduceBatch(t, kcat, topic, recs[i:j])
		i = j
	}
}

func sameBatch(a, b Record) bool {
	if a.Partition != b.Partition || len(a.Headers) != len(b.Headers) || (a.Key == nil) != (b.Key == nil) {
		return false
	}
	for k, v := range a.Headers {
		if bv, ok := b.Headers[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func (c *Cluster) kcatProduceBatch(t testing.TB, kcat, topic string, recs []Record) {
	t.Helper()
	args := append(c.kcatArgs(), "-P", "-t", topic, "-X", "acks=all", "-D", kcatMsgDelim)
	if p := recs[0].Partition; p >= 0 {
		args = append(args, "-p", strconv.Itoa(int(p)))
	}
	withKey := recs[0].Key != nil
	if withKey {
		args = append(args, "-K", kcatKeyDelim)
	}
	keys := make([]string, 0, len(recs[0].Headers))
	for k := range recs[0].Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-H", k+"="+recs[0].Headers[k])
	}
	var in bytes.Buffer
	for _, r := range recs {
		if withKey {
			in.Write(r.Key)
			in.WriteString(kcatKeyDelim)
		}
		in.Write(r.Value)
		in.WriteString(kcatMsgDelim)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, args...)
	cmd.Stdin = &in
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kafkatest: kcat produce to %q: %v\n%s", topic, err, out)
	}
}

// KcatConsume reads n records of topic from the beginning with kcat (all
// partitions, no consumer group), failing the test if fewer than n arrive
// within timeout. Records come in partition order within each partition.
func (c *Cluster) KcatConsume(t testing.TB, topic string, n int, timeout time.Duration) []Record {
	t.Helper()
	kcat := Kcat(t)
	args := append(c.kcatArgs(), "-C", "-t", topic, "-o", "beginning", "-c", strconv.Itoa(n), "-J")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	recs, perr := ParseKcatJSON(out)
	if perr != nil {
		t.Fatalf("kafkatest: kcat consume %q: %v", topic, perr)
	}
	if err != nil || len(recs) < n {
		t.Fatalf("kafkatest: kcat consume %q: got %d of %d records within %s: %v\n%s", topic, len(recs), n, timeout, err, stderr.String())
	}
	return recs
}

// kcatEnvelope is one line of `kcat -C -J`.
type kcatEnvelope struct {
	Topic     string   `json:"topic"`
	Partition int32    `json:"partition"`
	Offset    int64    `json:"offset"`
	TSType    string   `json:"tstype"`
	TS        int64    `json:"ts"`
	Headers   []string `json:"headers"`
	Key       *string  `json:"key"`
	Payload   *string  `json:"payload"`
}

// ParseKcatJSON parses the output of `kcat -C -J`: one JSON envelope per
// line, headers as a flat [name, value, ...] list.
func ParseKcatJSON(out []byte) ([]Record, error) {
	var recs []Record
	for i, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		var e kcatEnvelope
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			return recs, fmt.Errorf("line %d: %w: %q", i+1, err, line)
		}
		if len(e.Headers)%2 != 0 {
			return recs, fmt.Errorf("line %d: odd header list %q", i+1, e.Headers)
		}
		r := Record{Topic: e.Topic, Partition: e.Partition, Offset: e.Offset}
		if e.TS > 0 {
			r.Timestamp = time.UnixMilli(e.TS).UTC()
		}
		if e.Key != nil {
			r.Key = []byte(*e.Key)
		}
		if e.Payload != nil {
			r.Value = []byte(*e.Payload)
		}
		if len(e.Headers) > 0 {
			r.Headers = map[string]string{}
			for h := 0; h < len(e.Headers); h += 2 {
				r.Headers[e.Headers[h]] = e.Headers[h+1]
			}
		}
		recs = append(recs, r)
	}
	return recs, nil
}
