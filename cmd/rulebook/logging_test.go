package main

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// TestLogDurationsCarryUnit: a duration field in a log line says its unit,
// in JSON and on the console.
func TestLogDurationsCarryUnit(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger(&buf, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	log.Info().Dur("lookback", 24*time.Hour).Dur("took", 1500*time.Millisecond).Msg("x")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if line["lookback"] != "24h0m0s" || line["took"] != "1.5s" {
		t.Errorf("durations %v, %v; want \"24h0m0s\", \"1.5s\"", line["lookback"], line["took"])
	}
	buf.Reset()
	log, _ = newLogger(&buf, "console", "info")
	log.Info().Dur("took", 1500*time.Millisecond).Msg("x")
	if !bytes.Contains(buf.Bytes(), []byte("1.5s")) {
		t.Errorf("console line %q lacks 1.5s", buf.String())
	}
}
