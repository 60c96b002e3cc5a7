// Command kfake runs an in-memory Kafka-protocol broker cluster on
// 127.0.0.1 (github.com/twmb/franz-go/pkg/kfake) until SIGINT or SIGTERM, so
// shell tests and benchmarks of the rulebook binary can talk to a broker in
// a separate process.
//
//	kfake --brokers 3 --topics events,dlq --partitions 6
//	kfake --ports 9092,9093,9094 --topics events --data-dir /tmp/kf
//
// When the brokers listen it prints one line to stdout,
//
//	kfake: ready 127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094
//
// and, with --addr-file, writes the comma-separated addresses to that file
// (written whole via rename, so a poller never sees half of it).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rulebook-dev/rulebook/test/kafkatest"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "kfake:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("kfake", flag.ContinueOnError)
	brokers := fs.Int("brokers", 3, "number of brokers (ignored when --ports is set)")
	ports := fs.String("ports", "", "comma-separated ports, one per broker (default: random free ports)")
	topics := fs.String("topics", "", "comma-separated topics to create")
	partitions := fs.Int("partitions", 3, "partitions per created topic")
	autoCreate := fs.Bool("auto-create-topics", false, "create topics on first use")
	dataDir := fs.String("data-dir", "", "persist state here so a restarted kfake keeps records and offsets")
	minSession := fs.Duration("min-session-timeout", 100*time.Millisecond, "smallest consumer-group session timeout accepted")
	addrFile := fs.String("addr-file", "", "write the broker addresses to this file when ready")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts := kafkatest.Options{
		Brokers:           *brokers,
		Partitions:        *partitions,
		AutoCreateTopics:  *autoCreate,
		DataDir:           *dataDir,
		MinSessionTimeout: *minSession,
	}
	var err error
	if opts.Ports, err = parsePorts(*ports); err != nil {
		return err
	}
	for _, t := range strings.Split(*topics, ",") {
		if t = strings.TrimSpace(t); t != "" {
			opts.Topics = append(opts.Topics, t)
		}
	}
	c, err := kafkatest.New(opts)
	if err != nil {
		return err
	}
	defer c.Close()
	if *addrFile != "" {
		if err := writeAtomic(*addrFile, c.Bootstrap()+"\n"); err != nil {
			return err
		}
	}
	fmt.Println("kfake: ready", c.Bootstrap())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	return nil
}

func parsePorts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := strconv.Atoi(f)
		if err != nil || p <= 0 || p > 65535 {
			return nil, fmt.Errorf("--ports: %q is not a port", f)
		}
		out = append(out, p)
	}
	return out, nil
}

func writeAtomic(path, content string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".kfake-addr-*")
	if err != nil {
		return fmt.Errorf("--addr-file: %w", err)
	}
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("--addr-file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("--addr-file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("--addr-file: %w", err)
	}
	return nil
}
