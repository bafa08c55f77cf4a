package server

import (
	"context"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	connectcors "connectrpc.com/cors"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"connectrpc.com/otelconnect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/cors"
	"go.opentelemetry.io/otel/trace"

	"github.com/vpnfacade/vpnfacade/access"
	"github.com/vpnfacade/vpnfacade/admin"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
	"github.com/vpnfacade/vpnfacade/gen/vpnfacade/admin/v1/adminv1connect"
	"github.com/vpnfacade/vpnfacade/tracing"
)

// scope is the instrumentation scope of the server's own spans.
const scope = "github.com/vpnfacade/vpnfacade/server"

// MaxRequestBytes bounds a request body, on every protocol. A request
// within every limit of package snapshot that a client would send (1,000
// ids, a few filters of up to 200 values) is far smaller; every byte more is
// decoding work, and garbage the collector pays for in proportion to the
// whole cache, before the limits can refuse the request.
const MaxRequestBytes = 256 << 10

// Options configures the HTTP handler.
type Options struct {
	// Reader answers every read.
	Reader *Reader
	// AllowedOrigins are the browser origins allowed by CORS; "*" allows any.
	// Empty disables CORS.
	AllowedOrigins []string
	// Registerer receives the request metrics (vpnfacade_requests_total,
	// vpnfacade_request_duration_seconds) and the snapshot's
	// (vpnfacade_snapshot_*); nil means no metrics. Pass the service's own
	// registry, not the global one.
	Registerer prometheus.Registerer
	// Gatherer, when set, is served on GET /metrics (usually the registry
	// that is also the Registerer). Nil: no /metrics on this handler, as
	// when metrics are served on a listener of their own.
	Gatherer prometheus.Gatherer
	// Regions are the regions the cache holds. An EC2-compatible request is
	// answered for the region of its SigV4 credential scope, which must be
	// one of them; an unsigned request for the only one, and with an error
	// when there are several. Empty: requests are not scoped to a region.
	Regions []string
	// Logger receives request errors; nil discards them.
	Logger *slog.Logger
	// Page, when set, serves the browser page on GET / and GET /app.js.
	Page http.Handler
	// Access, when set, authenticates and authorizes every read:
	// ClientVpnService calls (bearer token or client certificate) and the
	// EC2-compatible endpoint (SigV4). Health, reflection and the browser
	// page's static files stay open. Nil: the service is open to anyone who
	// can reach it.
	Access *access.Authenticator
	// MaxConcurrentLists bounds the expensive calls (List, and every EC2
	// call) this handler works on at once; beyond it, a call waits up to
	// ListQueueTimeout for a slot, then is shed (Connect Unavailable, EC2
	// RequestLimitExceeded) with a retry hint. 0 means DefaultMaxConcurrentLists.
	MaxConcurrentLists int
	// ListSharePerAddress is the share of MaxConcurrentLists one client
	// address (IP; the /64 network for IPv6) may hold at once, rounded down
	// and at least one slot, so that other addresses always find one: a
	// client holding its share (say with calls whose responses it never
	// reads) has its further calls wait up to ListQueueTimeout, then shed
	// as over MaxConcurrentLists. 0 or negative means
	// DefaultListSharePerAddress; 1 or more: no bound per address.
	ListSharePerAddress float64
	// ListRatePerAddress bounds the expensive calls (List, and every EC2
	// call) of one client address per second, checked before their body is
	// read; an address may burst two seconds' worth, and a call counts one
	// plus one per 16 KiB of its body. Beyond it a call is refused at once
	// (Connect ResourceExhausted, EC2 RequestLimitExceeded) with a retry
	// hint, answered once the wait is over (at most a second) to slow a
	// client that retries at once. 0 or negative: no limit (the binary's
	// --list-rate-per-address defaults to DefaultListRatePerAddress).
	ListRatePerAddress float64
	// ListQueueTimeout is how long a call over MaxConcurrentLists waits
	// before it is shed. 0 means DefaultListQueueTimeout.
	ListQueueTimeout time.Duration
	// ReadTimeout bounds the arrival of a unary request's body. 0 means
	// DefaultReadTimeout.
	ReadTimeout time.Duration
	// WriteTimeout bounds the writing of a unary response, from the end of
	// its request; a client that does not take it in time is cut off.
	// 0 means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// Watch serves WatchClientVpnEndpoints; nil answers it UNIMPLEMENTED.
	Watch *WatchHub
	// RefreshInterval is the time between refreshes of the cache: reads may
	// be kept by HTTP caches until the next refresh is due (Cache-Control
	// max-age). 0, the default, lets caches store reads but not reuse them
	// without revalidating (no-cache).
	RefreshInterval time.Duration
	// TracerProvider receives a server span for each ClientVpnService
	// call (otelconnect) and each EC2-compatible request, continuing the
	// W3C trace context (traceparent) the caller sent; the spans made
	// below them (store commands) are its children. Nil means no spans.
	TracerProvider trace.TracerProvider
	// Private marks answers as depending on who asks, as they do when
	// access control is on: reads are Cache-Control: private and vary on
	// Authorization. False, the default: reads are public.
	Private bool
	// Admin, when set, serves vpnfacade.admin.v1.AdminService (GetStatus,
	// RefreshNow) through it. With Access, only admin principals may call
	// it; without, it is open like the rest. Nil: not served.
	Admin admin.Coordinator
}

// Defaults of Options.
const (
	// DefaultListSharePerAddress is the default ListSharePerAddress: half
	// the slots, so that one client leaves the other half to the others
	// (4 of the 8 on two CPUs).
	DefaultListSharePerAddress = 0.5
	// DefaultListQueueTimeout is the default ListQueueTimeout.
	DefaultListQueueTimeout = 100 * time.Millisecond
	// DefaultReadTimeout is the default ReadTimeout.
	DefaultReadTimeout = 10 * time.Second
	// DefaultWriteTimeout is the default WriteTimeout.
	DefaultWriteTimeout = 30 * time.Second
)

// DefaultMaxConcurrentLists is the default MaxConcurrentLists: four per
// CPU the process may use.
func DefaultMaxConcurrentLists() int { return 4 * runtime.GOMAXPROCS(0) }

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxConcurrentLists <= 0 {
		o.MaxConcurrentLists = DefaultMaxConcurrentLists()
	}
	if o.ListSharePerAddress <= 0 {
		o.ListSharePerAddress = DefaultListSharePerAddress
	}
	if o.ListQueueTimeout <= 0 {
		o.ListQueueTimeout = DefaultListQueueTimeout
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	return o
}

// NewHandler returns the HTTP handler serving, on one listener:
// ClientVpnService over Connect, gRPC and gRPC-Web; grpc.health.v1;
// server reflection v1 and v1alpha; /metrics; and the EC2-compatible Query
// API on POST /; and the browser page on GET / when one is given.
func NewHandler(opts Options) http.Handler {
	opts = opts.withDefaults()
	var interceptors []connect.Interceptor
	mux := http.NewServeMux()
	var metrics *requestMetrics
	if opts.Registerer != nil {
		metrics = newRequestMetrics(opts.Registerer)
		interceptors = append(interceptors, metrics)
		opts.Registerer.MustRegister(newSnapshotCollector(opts.Reader))
	}
	if opts.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{Registry: opts.Registerer}))
	}
	pending := newPendingEndpoints()
	handlerOpts := append([]connect.HandlerOption{
		connect.WithInterceptors(interceptors...),
		connect.WithReadMaxBytes(MaxRequestBytes),
		connect.WithCodec(protoCodec{pending: pending}),
		connect.WithCodec(jsonCodec{pending: pending}),
	}, CompressionOptions()...)
	cache := &httpCache{reader: opts.Reader, refreshInterval: opts.RefreshInterval, private: opts.Private, auth: opts.Access}
	ec2 := newEC2Handler(opts, metrics, cache)
	service := newClientVpnService(opts, cache, pending)
	serviceOpts := handlerOpts
	if opts.TracerProvider != nil {
		// Outermost, so that the span covers the metrics and the access
		// checks. Health checks and reflection get no spans: probes would
		// fill the tracing backend.
		tracer, err := otelconnect.NewInterceptor(
			otelconnect.WithTracerProvider(opts.TracerProvider),
			otelconnect.WithPropagator(tracing.Propagator()),
			otelconnect.WithTrustRemote(), // continue the caller's trace
			otelconnect.WithoutMetrics(),
		)
		if err != nil {
			// Only its metrics can fail, and they are off.
			opts.Logger.Error("tracing ClientVpnService calls is off", "error", err)
		} else {
			serviceOpts = append([]connect.HandlerOption{connect.WithInterceptors(tracer)}, handlerOpts...)
		}
	}
	if opts.Access != nil {
		// After the metrics interceptor, so denied calls are counted too.
		serviceOpts = append(slices.Clone(serviceOpts), connect.WithInterceptors(&accessInterceptor{auth: opts.Access}))
	}
	path, handler := clientvpnv1connect.NewClientVpnServiceHandler(service, serviceOpts...)
	mux.Handle(path, wholeEnvelopes{next: handler})
	mux.Handle(grpchealth.NewHandler(&healthChecker{reader: opts.Reader}, handlerOpts...))
	services := []string{
		clientvpnv1connect.ClientVpnServiceName,
		grpchealth.HealthV1ServiceName,
		grpcreflect.ReflectV1ServiceName,
		grpcreflect.ReflectV1AlphaServiceName,
	}
	if opts.Admin != nil {
		adminOpts := handlerOpts
		if opts.Access != nil {
			adminOpts = append(slices.Clone(handlerOpts), connect.WithInterceptors(&accessInterceptor{auth: opts.Access}, &adminInterceptor{auth: opts.Access}))
		}
		// RefreshNow answers before the connection's write deadline.
		wait := max(time.Second, opts.ReadTimeout+opts.WriteTimeout-time.Second)
		mux.Handle(adminv1connect.NewAdminServiceHandler(&AdminService{reader: opts.Reader, coord: opts.Admin, logger: opts.Logger, wait: wait}, adminOpts...))
		services = append(services, adminv1connect.AdminServiceName)
	}
	reflector := grpcreflect.NewStaticReflector(services...)
	mux.Handle(grpcreflect.NewHandlerV1(reflector))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	mux.Handle("POST /{$}", ec2)
	// The Query API takes its parameters in a GET's query string too; a GET
	// of / without an Action is the browser page.
	mux.Handle("GET /{$}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("Action") || opts.Page == nil {
			ec2.ServeHTTP(w, r)
			return
		}
		opts.Page.ServeHTTP(w, r)
	}))
	if opts.Page != nil {
		mux.Handle("GET /app.js", opts.Page)
	}

	var h http.Handler = &connectGETBase64{next: mux, errors: connect.NewErrorWriter(handlerOpts...)}
	if opts.Access != nil {
		h = withTLSState(h)
	}
	slots := newAdmission(opts.MaxConcurrentLists, opts.ListSharePerAddress, opts.ListQueueTimeout)
	if opts.Registerer != nil {
		slots.overShare = NewRefusalCounter(opts.Registerer, "list_share_per_address").Inc
	}
	h = slots.middleware(h)
	// Envelopes (gRPC, gRPC-Web) add 5 bytes to the message connect-go
	// limits to MaxRequestBytes.
	h = &bodyLimit{next: h, max: MaxRequestBytes + 64, errors: connect.NewErrorWriter(handlerOpts...)}
	if opts.ListRatePerAddress > 0 {
		// Before any byte of the body is read or decoded.
		rate := newAddressRate(h, opts.ListRatePerAddress, connect.NewErrorWriter(handlerOpts...))
		if opts.Registerer != nil {
			rate.refusals = NewRefusalCounter(opts.Registerer, "list_rate_per_address").Inc
		}
		h = rate
	}
	// A revalidated read (304) takes no List slot; errors, the limits' too,
	// are not stored by HTTP caches.
	h = cache.middleware(h)
	h = &deadlines{
		next:         h,
		readTimeout:  opts.ReadTimeout,
		writeTimeout: opts.WriteTimeout,
		streaming:    streamingProcedures(clientvpnv1connect.ClientVpnServiceName),
	}
	if len(opts.AllowedOrigins) > 0 {
		h = cors.New(cors.Options{
			AllowedOrigins: opts.AllowedOrigins,
			AllowedMethods: connectcors.AllowedMethods(),
			AllowedHeaders: append(connectcors.AllowedHeaders(), "Authorization"),
			ExposedHeaders: append(connectcors.ExposedHeaders(), "ETag", snapshotAgeHeader),
			MaxAge:         7200,
		}).Handler(h)
	}
	return h
}

// healthChecker reports SERVING once a snapshot can answer reads.
type healthChecker struct {
	reader *Reader
}

// Check implements grpchealth.Checker.
func (c *healthChecker) Check(ctx context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	switch strings.TrimSpace(req.Service) {
	case "", clientvpnv1connect.ClientVpnServiceName:
	default:
		return nil, connect.NewError(connect.CodeNotFound, errUnknownService(req.Service))
	}
	if _, err := c.reader.View(ctx); err != nil {
		return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
	}
	return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
}

type errUnknownService string

// Error implements error.
func (e errUnknownService) Error() string {
	return "unknown service " + string(e) + "; known: \"\" and " + clientvpnv1connect.ClientVpnServiceName
}
