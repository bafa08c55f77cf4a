package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/vpnfacade/vpnfacade/tracing"
)

// newLogger returns a JSON logger unless format (or, for "auto", a
// terminal on w) asks for text. Durations are written as Go spells them
// ("15s"), in every package's log lines, instead of as nanoseconds.
func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "text"
		}
	}
	opts := &slog.HandlerOptions{ReplaceAttr: readableDurations}
	// Lines logged within a span carry its trace_id and span_id.
	if format == "text" {
		return slog.New(tracing.LogHandler(slog.NewTextHandler(w, opts)))
	}
	return slog.New(tracing.LogHandler(slog.NewJSONHandler(w, opts)))
}

// readableDurations is a slog ReplaceAttr writing time.Duration values
// with their String form.
func readableDurations(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}

// redisLogger passes go-redis's own log lines (pool and reconnection
// notes, which it prints with the standard log package by default) to
// slog as warnings, with every secret of the Redis URL hidden.
type redisLogger struct {
	log     *slog.Logger
	secrets []string // passwords to hide, longest first
}

// newRedisLogger returns a go-redis logger writing to log and hiding the
// password of redisURL (of each comma-separated address).
func newRedisLogger(log *slog.Logger, redisURL string) redisLogger {
	l := redisLogger{log: log}
	for _, p := range strings.Split(redisURL, ",") {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok && pw != "" {
				l.secrets = append(l.secrets, pw, url.QueryEscape(pw), url.PathEscape(pw))
			}
		}
	}
	return l
}

// Printf implements go-redis's logging interface (redis.SetLogger).
func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	for _, s := range l.secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "REDACTED")
		}
	}
	l.log.WarnContext(ctx, "go-redis: "+msg)
}
