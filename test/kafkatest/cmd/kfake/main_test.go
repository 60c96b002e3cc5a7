package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/test/kafkatest"
)

func TestParsePorts(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"", nil, false},
		{"9092", []int{9092}, false},
		{" 9092, 9093 ,", []int{9092, 9093}, false},
		{"x", nil, true},
		{"0", nil, true},
		{"70000", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parsePorts(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err: got %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestBinaryServesKcat builds the binary, runs it as a separate process and
// checks with kcat that the brokers and topics it announces exist.
func TestBinaryServesKcat(t *testing.T) {
	kcat := kafkatest.Kcat(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "kfake")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addrFile := filepath.Join(dir, "addrs")
	cmd := exec.Command(bin, "--brokers", "3", "--topics", "a,b", "--partitions", "5", "--addr-file", addrFile)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
	})

	var bootstrap string
	deadline := time.Now().Add(20 * time.Second)
	for bootstrap == "" {
		if b, err := os.ReadFile(addrFile); err == nil {
			bootstrap = strings.TrimSpace(string(b))
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("kfake did not write its addresses within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(strings.Split(bootstrap, ",")); n != 3 {
		t.Fatalf("addresses: got %q, want 3", bootstrap)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, kcat, "-b", bootstrap, "-L", "-J").Output()
	if err != nil {
		t.Fatalf("kcat -L: %v", err)
	}
	var md struct {
		Brokers []struct{ ID int } `json:"brokers"`
		Topics  []struct {
			Topic      string            `json:"topic"`
			Partitions []json.RawMessage `json:"partitions"`
		} `json:"topics"`
	}
	if err := json.Unmarshal(out, &md); err != nil {
		t.Fatalf("kcat -L -J: %v: %s", err, out)
	}
	if len(md.Brokers) != 3 {
		t.Errorf("brokers: got %d, want 3", len(md.Brokers))
	}
	parts := map[string]int{}
	for _, tp := range md.Topics {
		parts[tp.Topic] = len(tp.Partitions)
	}
	if parts["a"] != 5 || parts["b"] != 5 {
		t.Errorf("topics: got %v, want a and b with 5 partitions", parts)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("kfake did not exit within 10s of SIGTERM")
	}
}
