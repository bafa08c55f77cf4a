// Command vpnfacade serves a cached copy of every AWS Client VPN endpoint of
// the configured accounts and regions over Connect, gRPC, gRPC-Web and the
// EC2 Query API, refreshing it in the background.
//
// It only wires the packages together: see --help for the settings.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"
	"golang.org/x/term"

	"github.com/vpnfacade/vpnfacade/refresher"
	"github.com/vpnfacade/vpnfacade/server"
	"github.com/vpnfacade/vpnfacade/store"
	"github.com/vpnfacade/vpnfacade/upstream"
	"github.com/vpnfacade/vpnfacade/web"
)

// shutdownGrace bounds how long in-flight requests may take after SIGTERM.
const shutdownGrace = 10 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "vpnfacade:", err)
		os.Exit(1)
	}
}

// run starts the service and blocks until ctx is done, then shuts down
// gracefully: it stops accepting, drains in-flight calls, stops the refresher
// and closes the store.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := newLogger(cfg.logFormat, stderr)
	if cfg.pprofListen != "" {
		stopPprof, err := startPprof(cfg.pprofListen, logger)
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	upstreamCfg := upstream.Config{
		Regions:    cfg.regions,
		RoleARNs:   cfg.assumeRoles,
		AccountID:  cfg.accountID,
		Logger:     logger.With("component", "upstream"),
		Registerer: registry,
	}
	if cfg.demo {
		demo, err := startDemo(ctx, cfg.demoCount, logger)
		if err != nil {
			return err
		}
		defer demo.Close()
		demo.configure(&upstreamCfg)
	}

	st, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			logger.Warn("closing the store", "error", err)
		}
	}()

	source, err := upstream.New(ctx, upstreamCfg)
	if err != nil {
		return fmt.Errorf("configuring AWS access: %w", err)
	}
	refreshMetrics, err := refresher.NewMetrics(registry)
	if err != nil {
		return err
	}
	var epoch atomic.Uint64 // fencing epoch of the lease this process holds
	ref, err := refresher.New(source, st,
		refresher.WithMetrics(refreshMetrics),
		refresher.WithInterval(cfg.refreshInterval),
		refresher.WithLogger(logger.With("component", "refresher")),
		refresher.WithEpoch(epoch.Load),
	)
	if err != nil {
		return err
	}

	regions := source.Regions()
	defaultRegion := ""
	if len(regions) == 1 {
		defaultRegion = regions[0]
	}
	reader := server.NewReader(st, cfg.maxStaleness, logger)
	registry.MustRegister(server.NewSnapshotCollector(reader))
	handler := server.NewHandler(server.Options{
		Reader:         reader,
		AllowedOrigins: cfg.allowedOrigins,
		Registry:       registry,
		DefaultRegion:  defaultRegion,
		Logger:         logger,
		Page:           web.Handler(),
	})
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler:           handler,
		Protocols:         &protocols,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.listen, err)
	}
	scheme := "http"
	if cfg.tlsCert != "" {
		scheme = "https"
	}
	logger.Info("vpnfacade listening", "addr", scheme+"://"+ln.Addr().String(),
		"store", storeKind(cfg), "regions", regions, "demo", cfg.demo)

	refreshCtx, stopRefresh := context.WithCancel(context.WithoutCancel(ctx))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		if cfg.tlsCert != "" {
			err = srv.ServeTLS(ln, cfg.tlsCert, cfg.tlsKey)
		} else {
			err = srv.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serving: %w", err)
	})
	g.Go(func() error { return runRefresher(refreshCtx, cfg, st, ref, &epoch, logger) })
	g.Go(func() error {
		<-gctx.Done()
		logger.Info("shutting down: draining requests")
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		defer cancel()
		err := srv.Shutdown(shutdownCtx)
		stopRefresh()
		return err
	})
	return g.Wait()
}

// runRefresher runs the refresher until ctx is done. With Redis, replicas
// elect one refresher through a lease, and the lease's fencing epoch goes
// with every publish so that a deposed leader cannot overwrite newer data.
// The in-process store is always its own leader.
func runRefresher(ctx context.Context, cfg *settings, st store.Store, ref *refresher.Refresher, epoch *atomic.Uint64, logger *slog.Logger) error {
	rs, ok := st.(*store.Redis)
	if !ok {
		return ref.Run(ctx)
	}
	host, _ := os.Hostname()
	owner := host + "/" + strconv.Itoa(os.Getpid())
	lease := rs.Lease(owner, cfg.leaseTTL)
	return lease.Run(ctx, func(leadCtx context.Context, e uint64) error {
		epoch.Store(e)
		logger.Info("elected refresher", "owner", owner, "epoch", e)
		err := ref.Run(leadCtx)
		logger.Info("no longer the refresher", "owner", owner, "epoch", e)
		return err
	})
}

// openStore opens Redis when a URL is configured, else an in-process store.
func openStore(ctx context.Context, cfg *settings, logger *slog.Logger) (store.Store, error) {
	if cfg.redisURL == "" {
		return store.NewMemory(), nil
	}
	st, err := store.NewRedis(ctx, store.RedisOptions{
		URL:            cfg.redisURL,
		SentinelMaster: cfg.redisSentinel,
		Namespace:      cfg.namespace,
		Logger:         logger.With("component", "store"),
	})
	if err != nil {
		return nil, fmt.Errorf("opening Redis: %w", err)
	}
	return st, nil
}

func storeKind(cfg *settings) string {
	if cfg.redisURL == "" {
		return "memory"
	}
	return "redis"
}

// newLogger returns a JSON logger unless format (or, for "auto", a
// terminal on w) asks for text.
func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}
