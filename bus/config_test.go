package bus

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Config
		err  string
	}{
		{name: "one broker", in: "kafka://127.0.0.1:9092/events",
			want: Config{Brokers: []string{"127.0.0.1:9092"}, Topic: "events", Group: "rulebook"}},
		{name: "several brokers and a group", in: "kafka://k1:9092,k2:9093,k3:9094/rb.events_1-x?group=site-a",
			want: Config{Brokers: []string{"k1:9092", "k2:9093", "k3:9094"}, Topic: "rb.events_1-x", Group: "site-a"}},
		{name: "scheme case and duplicate broker", in: "KAFKA://k1:9092,k1:9092/t",
			want: Config{Brokers: []string{"k1:9092"}, Topic: "t", Group: "rulebook"}},
		{name: "ipv6 broker", in: "kafka://[::1]:9092/t",
			want: Config{Brokers: []string{"[::1]:9092"}, Topic: "t", Group: "rulebook"}},
		{name: "escaped group", in: "kafka://k:1/t?group=a%20b",
			want: Config{Brokers: []string{"k:1"}, Topic: "t", Group: "a b"}},
		{name: "other scheme", in: "http://k:9092/t", err: `bus url "http://k:9092/t": want kafka://`},
		{name: "empty", in: "", err: `bus url "": want kafka://`},
		{name: "no topic", in: "kafka://k:9092", err: "missing topic"},
		{name: "empty topic", in: "kafka://k:9092/", err: "missing topic"},
		{name: "no brokers", in: "kafka:///t", err: "missing brokers"},
		{name: "no port", in: "kafka://k/t", err: `broker "k": want HOST:PORT`},
		{name: "bad port", in: "kafka://k:99999/t", err: `broker "k:99999": port must be`},
		{name: "empty broker in list", in: "kafka://k:1,,k:2/t", err: `broker "": empty broker address`},
		{name: "no host", in: "kafka://:9092/t", err: "missing host"},
		{name: "topic with slash", in: "kafka://k:1/a/b", err: `topic "a/b": topic may hold only`},
		{name: "topic dot", in: "kafka://k:1/..", err: `topic cannot be`},
		{name: "topic too long", in: "kafka://k:1/" + strings.Repeat("a", 250), err: "longer than 249"},
		{name: "unknown parameter", in: "kafka://k:1/t?grup=x", err: `unknown parameter "grup"`},
		{name: "empty group", in: "kafka://k:1/t?group=", err: `group "": empty group`},
		{name: "group twice", in: "kafka://k:1/t?group=a&group=b", err: "group given 2 times"},
		{name: "bad query", in: "kafka://k:1/t?group=%zz", err: "query"},
		{name: "fragment", in: "kafka://k:1/t#x", err: "fragment"},
		{name: "credentials not echoed", in: "kafka://user:s3cret@k:1/t", err: `bus url "kafka://***@k:1/t": credentials in the url are not supported`},
		{name: "credentials with another scheme", in: "https://user:s3cret@k:1/t", err: `bus url "https://***@k:1/t": want kafka://`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseURL(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseURL(%q) error = %v, want it to contain %q", tc.in, err, tc.err)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("error repeats the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseURL(%q): %v", tc.in, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseURL(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
			if err := got.Validate(); err != nil {
				t.Fatalf("parsed config does not validate: %v", err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Brokers: []string{"k:1"}, Topic: "t", Group: "g"}
	tests := []struct {
		name   string
		modify func(*Config)
		err    string
	}{
		{"valid", func(*Config) {}, ""},
		{"no brokers", func(c *Config) { c.Brokers = nil }, "no brokers"},
		{"bad broker", func(c *Config) { c.Brokers = []string{"k"} }, `broker "k"`},
		{"bad topic", func(c *Config) { c.Topic = "a b" }, `topic "a b"`},
		{"no group", func(c *Config) { c.Group = "" }, `group ""`},
		{"negative timeout", func(c *Config) { c.WriteTimeout = -1 }, "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.modify(&c)
			err := c.Validate()
			if tc.err == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Validate error = %v, want %q", err, tc.err)
			}
		})
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"kafka://127.0.0.1:9092/events", "kafka://a:1,b:2/t?group=g", "kafka://[::1]:1/t",
		"kafka://u:p@h:1/t", "kafka://h:1/t?group=a&group=b", "kafka:///", "kafka://h:1/t#f",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := ParseURL(s)
		if err != nil {
			if red := redactURL(s); red != s && strings.Contains(err.Error(), fmt.Sprintf("%q", s)) {
				t.Fatalf("error echoes a URL with credentials: %v", err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("ParseURL(%q) accepted a config that does not validate: %v", s, err)
		}
		if len(cfg.Brokers) == 0 || cfg.Topic == "" || cfg.Group == "" {
			t.Fatalf("ParseURL(%q) = %+v: missing parts", s, cfg)
		}
	})
}
