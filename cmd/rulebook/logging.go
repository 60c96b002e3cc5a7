package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

// Durations in logs carry their unit: zerolog's default writes a bare
// number of milliseconds ("lookback":86400000), which reads as anything.
// With the string format a duration field reads "24h0m0s" or "1.5s" in both
// JSON and console output. Set once, before any logger exists.
func init() { zerolog.DurationFieldFormat = zerolog.DurationFormatString }

// newLogger returns the process logger: JSON by default, human console
// output when stderr is a terminal or format is "console".
func newLogger(w io.Writer, format, level string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.Logger{}, fmt.Errorf("--log-level: want debug, info, warn or error, got %q", level)
	}
	switch format {
	case "auto":
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			format = "console"
		} else {
			format = "json"
		}
	case "json", "console":
	default:
		return zerolog.Logger{}, fmt.Errorf("--log-format: want auto, json or console, got %q", format)
	}
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

func discardLog() zerolog.Logger { return zerolog.Nop() }
