package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/vpnfacade/vpnfacade/access"
	"github.com/vpnfacade/vpnfacade/connlimit"
	"github.com/vpnfacade/vpnfacade/lease"
	"github.com/vpnfacade/vpnfacade/refresher"
	"github.com/vpnfacade/vpnfacade/server"
	"github.com/vpnfacade/vpnfacade/store"
	"github.com/vpnfacade/vpnfacade/tracing"
	"github.com/vpnfacade/vpnfacade/upstream"
	"github.com/vpnfacade/vpnfacade/web"
)

// Main is the vpnfacade program, in the shape tests can drive in-process:
// ParseFlags, then Run (which returns once the service listens), then
// Close. Failed reports a failure of the running service.
type Main struct {
	stderr io.Writer
	getenv func(string) string

	cfg    *settings
	logger *slog.Logger
	addr   string                // the listener's URL, once Run succeeded
	access *access.Authenticator // nil: no --access-file
	// configureUpstream, when set, adjusts the upstream's configuration
	// last: in-process tests point it at their emulator with it, where
	// the binary's tests set AWS_ENDPOINT_URL_EC2 and credentials.
	configureUpstream func(*upstream.Options)

	failed   chan error
	closers  []func() error // undone by Close, last first
	closeErr error
	closed   sync.Once
}

// NewMain returns a program that logs to stderr and reads its environment
// with getenv.
func NewMain(stderr io.Writer, getenv func(string) string) *Main {
	return &Main{stderr: stderr, getenv: getenv, failed: make(chan error, 2)}
}

// ParseFlags reads the configuration from args and the environment. It
// returns flag.ErrHelp after printing the usage for -h and --help.
func (m *Main) ParseFlags(args []string) error {
	cfg, err := parseConfig(args, m.getenv, m.stderr)
	if err != nil {
		return err
	}
	m.cfg = cfg
	m.logger = newLogger(cfg.logFormat, m.stderr)
	return nil
}

// Addr returns the URL the service listens on (scheme, host and port), once
// Run has succeeded.
func (m *Main) Addr() string { return m.addr }

// Failed receives the error that stopped the running service on its own
// (the listener failed, or the refresher gave up).
func (m *Main) Failed() <-chan error { return m.failed }

// onClose registers f to run on Close, before everything registered earlier.
func (m *Main) onClose(f func() error) { m.closers = append(m.closers, f) }

// Close shuts the service down gracefully: it stops accepting, drains
// in-flight calls within the shutdown grace, stops the refresher and closes
// the store. It is safe to call more than once and after a failed Run.
func (m *Main) Close() error {
	m.closed.Do(func() {
		var errs []error
		for _, f := range slices.Backward(m.closers) {
			errs = append(errs, f())
		}
		m.closeErr = errors.Join(errs...)
	})
	return m.closeErr
}

// Run starts the service and returns once it listens. What it started is
// stopped by Close, also when Run fails half-way.
func (m *Main) Run(ctx context.Context) error {
	if m.cfg == nil {
		return errors.New("Run before ParseFlags")
	}
	cfg, logger := m.cfg, m.logger
	if cfg.pprofListen != "" {
		stopPprof, err := startPprof(cfg.pprofListen, logger)
		if err != nil {
			return err
		}
		m.onClose(func() error { stopPprof(); return nil })
	}
	tracer, err := m.startTracing(ctx)
	if err != nil {
		return err
	}
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.metricsListen != "" {
		stopMetrics, err := startMetrics(cfg.metricsListen, registry, logger)
		if err != nil {
			return err
		}
		m.onClose(func() error { stopMetrics(); return nil })
	}
	tlsConfig, err := m.startAccess(ctx)
	if err != nil {
		return err
	}

	upstreamCfg := upstream.Options{
		Regions:        cfg.regions,
		RoleARNs:       cfg.assumeRoles,
		AccountID:      cfg.accountID,
		Logger:         logger.With("component", "upstream"),
		Registerer:     registry,
		TracerProvider: tracer,
	}
	if cfg.demo {
		demo, err := startDemo(ctx, cfg.demoCount, logger)
		if err != nil {
			return err
		}
		m.onClose(demo.Close)
		demo.configure(&upstreamCfg)
	}
	if m.configureUpstream != nil {
		m.configureUpstream(&upstreamCfg)
	}

	st, elector, err := openStore(ctx, cfg, logger, tracer)
	if err != nil {
		return err
	}
	m.onClose(func() error {
		if err := st.Close(); err != nil {
			return fmt.Errorf("closing the store: %w", err)
		}
		return nil
	})

	source, err := upstream.New(ctx, upstreamCfg)
	if err != nil {
		return fmt.Errorf("configuring AWS access: %w", err)
	}
	var epoch atomic.Uint64 // fencing epoch of the term this process leads
	status := &statusSetup{}
	ref, err := refresher.New(source, st, refresher.Options{
		Interval:       cfg.refreshInterval,
		Epoch:          epoch.Load,
		Logger:         logger.With("component", "refresher"),
		Registerer:     registry,
		TracerProvider: tracer,
		Report:         status.report,
		ReturnMemory:   true,
	})
	if err != nil {
		return err
	}
	if err := status.open(cfg, st, elector, ref, registry); err != nil {
		return err
	}

	regions := source.Regions()
	reader := server.NewReader(server.ReaderOptions{Store: st, MaxStaleness: cfg.maxStaleness, Logger: logger})
	watch, err := server.NewWatchHub(server.WatchOptions{
		Reader:                reader,
		Log:                   st,
		Heartbeat:             cfg.watch.heartbeat,
		Queue:                 cfg.watch.queue,
		MaxWatchers:           cfg.watch.maxStreams,
		MaxWatchersPerAddress: cfg.watch.maxPerAddress,
		Registerer:            registry,
		Logger:                logger,
	})
	if err != nil {
		return err
	}
	m.onClose(func() error { watch.Close(); return nil })
	var gatherer prometheus.Gatherer = registry
	if cfg.metricsListen != "" {
		gatherer = nil // served on --metrics-listen instead
	}
	handler := server.NewHandler(server.Options{
		Reader:         reader,
		AllowedOrigins: cfg.allowedOrigins,
		Registerer:     registry,
		Gatherer:       gatherer,
		TracerProvider: tracer,
		Regions:        regions,
		Logger:         logger,
		Page:           web.Handler(),

		MaxConcurrentLists: cfg.maxLists,
		ListRatePerAddress: cmp.Or(cfg.listRate, -1), // 0 turns it off
		ReadTimeout:        cfg.readTimeout,
		WriteTimeout:       cfg.writeTimeout,
		Watch:              watch,
		Access:             m.access,
		// Reads may be cached until the next refresh is due.
		RefreshInterval: cfg.refreshInterval,
		// With access rules, answers depend on the caller: private caches only.
		Private: m.access != nil,

		ListSharePerAddress: cfg.listShare,
		Admin:               status.coord,
	})
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(true)
	// Bodies and responses are timed per request by the handler (see
	// --read-timeout and --write-timeout), so that streams are not cut;
	// here only what precedes a handler is bounded, and HTTP/2 streams in
	// flight per connection.
	srv := &http.Server{
		Handler:           handler,
		Protocols:         &protocols,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    1 << 20,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: 100},
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.listen, err)
	}
	ln = connlimit.New(ln, connlimit.Options{
		PerAddress: cmp.Or(cfg.maxConnsPerAddr, -1), // 0 turns it off
		OnRefuse:   server.NewRefusalCounter(registry, "connections_per_address").Inc,
	})
	scheme := "http"
	if cfg.tlsCert != "" {
		scheme = "https"
	}
	m.addr = scheme + "://" + ln.Addr().String()
	logger.Info("vpnfacade listening", "addr", m.addr,
		"store", storeKind(cfg), "regions", regions, "demo", cfg.demo)

	// The refresher stops after the listener has drained (see Close), so
	// that requests in flight still see a live store.
	refreshCtx, stopRefresh := context.WithCancel(context.WithoutCancel(ctx))
	refreshDone := make(chan struct{})
	go func() {
		defer close(refreshDone)
		if err := runRefresher(refreshCtx, elector, ref, status.serve, &epoch, logger); err != nil {
			m.failed <- fmt.Errorf("refresher: %w", err)
		}
	}()
	m.onClose(func() error { stopRefresh(); <-refreshDone; return nil })

	go func() {
		var err error
		if cfg.tlsCert != "" {
			err = srv.ServeTLS(ln, cfg.tlsCert, cfg.tlsKey)
		} else {
			err = srv.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			m.failed <- fmt.Errorf("serving: %w", err)
		}
	}()
	m.onClose(func() error {
		// Watch streams would hold the drain until the grace ends: end
		// them first, normally, so that clients resume elsewhere.
		watch.Close()
		logger.Info("shutting down: draining requests")
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.shutdownGrace)
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil {
			// Connections still busy after the grace (clients that stall
			// their body or stop reading) are closed: a stuck client is no
			// reason for a failed exit.
			logger.Warn("shutting down: closing the connections still busy after the grace",
				"grace", cfg.shutdownGrace, "reason", err)
			if err := srv.Close(); err != nil {
				return fmt.Errorf("closing connections: %w", err)
			}
		}
		return nil
	})
	return nil
}

// startTracing turns traces on when the OTEL_* environment configures an
// exporter (see tracing.FromEnv); it returns nil when they stay off. Close
// sends the spans not sent yet, after everything else has stopped.
func (m *Main) startTracing(ctx context.Context) (trace.TracerProvider, error) {
	t, err := tracing.FromEnv(ctx, m.getenv)
	if err != nil {
		return nil, err
	}
	if !t.Enabled() {
		return nil, nil
	}
	m.logger.Info("traces on", "exporter", t.Exporter)
	// The SDK reports failed exports through its process-wide handler,
	// which prints plain lines: route them to the JSON log instead.
	otelLog := m.logger.With("component", "traces")
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		otelLog.Warn("spans not exported", "error", err)
	}))
	m.onClose(func() error {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := t.Shutdown(sctx); err != nil {
			// An unreachable collector is no reason for a failed exit.
			m.logger.Warn("traces: the last spans were not sent", "error", err)
		}
		return nil
	})
	return t.TracerProvider, nil
}

// runRefresher runs the refresher whenever this process is elected writer,
// until ctx is done, and beside it serve (forced refresh requests from
// other replicas; nil when there are none). The term's fencing epoch goes
// with every publish, so that a deposed leader cannot overwrite newer data.
func runRefresher(ctx context.Context, elector lease.Elector, ref *refresher.Refresher, serve func(context.Context) error, epoch *atomic.Uint64, logger *slog.Logger) error {
	return elector.Run(ctx, func(leadCtx context.Context, e uint64) error {
		epoch.Store(e)
		logger.Info("elected refresher", "epoch", e)
		if serve != nil {
			serveCtx, stopServe := context.WithCancel(leadCtx)
			served := make(chan struct{})
			go func() { defer close(served); _ = serve(serveCtx) }()
			defer func() { stopServe(); <-served }()
		}
		err := ref.Run(leadCtx)
		logger.Info("no longer the refresher", "epoch", e)
		return err
	})
}

// openStore opens Redis, with a lease electing one refresher among the
// replicas, when a URL is configured; else an in-process store, which is
// always its own refresher.
func openStore(ctx context.Context, cfg *settings, logger *slog.Logger, tracer trace.TracerProvider) (watchableStore, lease.Elector, error) {
	if cfg.redisURL == "" {
		return store.NewMemoryOptions(store.MemoryOptions{ChangeLogLength: cfg.watch.retention, ChangeLogAge: cfg.watch.retentionAge}), lease.Solo{}, nil
	}
	// go-redis logs through a process-wide logger: route it to slog, as
	// JSON like every other line, with the password hidden.
	redis.SetLogger(newRedisLogger(logger.With("component", "redis"), cfg.redisURL))
	tlsConfig, err := redisTLS(cfg)
	if err != nil {
		return nil, nil, err
	}
	st, err := store.NewRedis(ctx, store.RedisOptions{
		URL:             cfg.redisURL,
		TLS:             tlsConfig,
		SentinelMaster:  cfg.redisSentinel,
		Namespace:       cfg.namespace,
		ChangeLogLength: cfg.watch.retention,
		ChangeLogAge:    cfg.watch.retentionAge,
		Logger:          logger.With("component", "store"),
		TracerProvider:  tracer,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("opening Redis: %w", err)
	}
	host, _ := os.Hostname()
	l, err := lease.New(st, lease.Options{
		Owner:  host + "/" + strconv.Itoa(os.Getpid()),
		TTL:    cfg.leaseTTL,
		Logger: logger.With("component", "lease"),
	})
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("--lease-ttl: %w", err), st.Close())
	}
	return st, l, nil
}

// watchableStore is a store with a change log, as both backends are.
type watchableStore interface {
	store.Store
	store.ChangeLog
}

func storeKind(cfg *settings) string {
	if cfg.redisURL == "" {
		return "memory"
	}
	return "redis"
}
