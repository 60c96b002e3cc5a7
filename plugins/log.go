package plugins

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/rs/zerolog"
)

// newHCLogger returns an hclog.Logger for go-plugin that writes into log.
// go-plugin re-logs every line the plugin writes to stderr through it (the
// SDK's hclog JSON lines keep their level and fields; other lines, such as a
// panic's stack, come at debug or error level), along with its own messages
// about starting and stopping the process.
func newHCLogger(log zerolog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Level:      hclogLevel(log.GetLevel()),
		Output:     &zerologWriter{log: log},
		JSONFormat: true,
	})
}

func hclogLevel(l zerolog.Level) hclog.Level {
	switch {
	case l <= zerolog.TraceLevel:
		return hclog.Trace
	case l == zerolog.DebugLevel:
		return hclog.Debug
	case l == zerolog.InfoLevel:
		return hclog.Info
	case l == zerolog.WarnLevel:
		return hclog.Warn
	case l == zerolog.Disabled:
		return hclog.Off
	}
	return hclog.Error
}

// zerologWriter turns hclog's JSON lines into zerolog events.
type zerologWriter struct {
	log zerolog.Logger
	mu  sync.Mutex
	buf []byte
}

func (w *zerologWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.emit(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 1<<20 { // a line without end: do not grow forever
		w.emit(w.buf)
		w.buf = nil
	}
	return len(p), nil
}

func (w *zerologWriter) emit(line []byte) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		w.log.Info().Msg(string(line))
		return
	}
	msg, _ := m["@message"].(string)
	lvl, _ := m["@level"].(string)
	ev := w.log.WithLevel(zerologLevel(lvl))
	keys := make([]string, 0, len(m))
	for k := range m {
		if !strings.HasPrefix(k, "@") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		ev = ev.Interface(fieldName(k), m[k])
	}
	ev.Msg(msg)
}

// reserved are the fields the engine's log lines already carry; a plugin's
// field of the same name is renamed so the JSON keeps one of each.
var reserved = map[string]bool{
	"plugin": true, "component": true, "level": true, "message": true, "time": true, "timestamp": true,
}

func fieldName(k string) string {
	switch {
	case k == "plugin":
		return "plugin_path" // go-plugin's own lines name the executable
	case reserved[k]:
		return "plugin_" + k
	}
	return k
}

func zerologLevel(l string) zerolog.Level {
	switch strings.ToLower(l) {
	case "trace":
		return zerolog.TraceLevel
	case "debug":
		return zerolog.DebugLevel
	case "info":
		return zerolog.InfoLevel
	case "warn", "warning":
		return zerolog.WarnLevel
	case "error":
		return zerolog.ErrorLevel
	}
	return zerolog.InfoLevel
}
