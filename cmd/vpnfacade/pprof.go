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
)

// startPprof serves Go's runtime profiles (net/http/pprof) on their own
// listener at addr, apart from the API so that they are never exposed with
// it. It returns a function that stops serving.
func startPprof(addr string, logger *slog.Logger) (stop func(), err error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", redactedCmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof-listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	logger.Info("pprof listening", "addr", "http://"+ln.Addr().String())
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
