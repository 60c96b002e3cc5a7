package bus

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/rs/zerolog"
)

// kafka-go's lines, logged through the consumer's logger (which names its
// component), hold each key once: before, they added component kafka-go
// to component bus.
func TestKafkaGoLogLinesHaveNoDuplicateKeys(t *testing.T) {
	var buf bytes.Buffer
	log := zerolog.New(&buf).Level(zerolog.DebugLevel).With().Str("component", "bus").Str("topic", "t").Logger()
	kafkaGoLog(log, zerolog.WarnLevel)("no leader for partition %d", 3)
	dec := json.NewDecoder(&buf)
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("log line %q: not an object (%v)", buf.String(), err)
	}
	seen := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		k := tok.(string)
		if _, ok := seen[k]; ok {
			t.Errorf("key %q twice in log line", k)
		}
		seen[k] = v
	}
	for k, want := range map[string]string{"component": `"bus"`, "library": `"kafka-go"`, "level": `"warn"`, "message": `"no leader for partition 3"`} {
		if got := string(seen[k]); got != want {
			t.Errorf("%s = %s, want %s", k, got, want)
		}
	}
}
