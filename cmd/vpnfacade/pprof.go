package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// startPprof serves Go's runtime profiles (net/http/pprof) on their own
// listener at addr (--pprof-listen), apart from the API so that they are
// never exposed with it. It returns a function that stops serving.
func startPprof(addr string, logger *slog.Logger) (stop func(), err error) {
	mux := http.NewServeMux()
	handlePprof(mux)
	return serveSide(mux, addr, "--pprof-listen", "pprof", logger)
}

// startMetrics serves /metrics and Go's runtime profiles (/debug/pprof/) on
// their own listener at addr (--metrics-listen), so that with access
// control on they are reachable only where operators put that listener.
// It returns a function that stops serving.
func startMetrics(addr string, registry *prometheus.Registry, logger *slog.Logger) (stop func(), err error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{Registry: registry}))
	handlePprof(mux)
	return serveSide(mux, addr, "--metrics-listen", "metrics", logger)
}

// handlePprof adds Go's runtime profiles to mux, with a command line that
// shows no secret.
func handlePprof(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", redactedCmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}

// serveSide serves mux on its own listener at addr, named by flag in
// errors and by what in the log, and returns a function that stops it.
func serveSide(mux *http.ServeMux, addr, flag, what string, logger *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	logger.Info(what+" listening", "addr", "http://"+ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// urlCredentials matches the user information of a URL ("://user:pass@").
var urlCredentials = regexp.MustCompile(`://[^@\s]*@`)

// redactedCmdline is pprof.Cmdline without secrets: the credentials of
// any URL on the command line (--redis-url redis://:password@…) are
// replaced by REDACTED. Pass secrets in the environment
// (VPNFACADE_REDIS_URL) instead: this page never shows it.
func redactedCmdline(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	args := make([]string, len(os.Args))
	for i, a := range os.Args {
		args[i] = urlCredentials.ReplaceAllString(a, "://REDACTED@")
	}
	_, _ = w.Write([]byte(strings.Join(args, "\x00")))
}
