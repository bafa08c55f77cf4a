package server

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	connectcors "connectrpc.com/cors"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/cors"

	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
)

// MaxRequestBytes bounds a request body, on every protocol.
const MaxRequestBytes = 1 << 20

// Options configures the HTTP handler.
type Options struct {
	// Reader answers every read.
	Reader *Reader
	// AllowedOrigins are the browser origins allowed by CORS; "*" allows any.
	// Empty disables CORS.
	AllowedOrigins []string
	// Registry receives the request metrics; nil disables /metrics.
	Registry *prometheus.Registry
	// Regions are the regions the cache holds. An EC2-compatible request is
	// answered for the region of its SigV4 credential scope, which must be
	// one of them; an unsigned request for the only one, and with an error
	// when there are several. Empty: requests are not scoped to a region.
	Regions []string
	// Logger receives request errors; nil discards them.
	Logger *slog.Logger
	// Page, when set, serves the browser page on GET / and GET /app.js.
	Page http.Handler
}

// NewHandler returns the HTTP handler serving, on one listener:
// ClientVpnService over Connect, gRPC and gRPC-Web; grpc.health.v1;
// server reflection v1 and v1alpha; /metrics; and the EC2-compatible Query
// API on POST /; and the browser page on GET / when one is given.
func NewHandler(opts Options) http.Handler {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var interceptors []connect.Interceptor
	mux := http.NewServeMux()
	ec2 := NewEC2Handler(opts.Reader, opts.Regions, logger)
	if opts.Registry != nil {
		metrics := newRequestMetrics(opts.Registry)
		interceptors = append(interceptors, metrics)
		ec2.metrics = metrics
		mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{Registry: opts.Registry}))
	}
	handlerOpts := append([]connect.HandlerOption{
		connect.WithInterceptors(interceptors...),
		connect.WithReadMaxBytes(MaxRequestBytes),
		connect.WithCodec(protoCodec{}),
		connect.WithCodec(jsonCodec{}),
	}, CompressionOptions()...)
	mux.Handle(clientvpnv1connect.NewClientVpnServiceHandler(NewClientVpnService(opts.Reader), handlerOpts...))
	mux.Handle(grpchealth.NewHandler(&healthChecker{reader: opts.Reader}, handlerOpts...))
	reflector := grpcreflect.NewStaticReflector(
		clientvpnv1connect.ClientVpnServiceName,
		grpchealth.HealthV1ServiceName,
		grpcreflect.ReflectV1ServiceName,
		grpcreflect.ReflectV1AlphaServiceName,
	)
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

	var h http.Handler = mux
	if len(opts.AllowedOrigins) > 0 {
		h = cors.New(cors.Options{
			AllowedOrigins: opts.AllowedOrigins,
			AllowedMethods: connectcors.AllowedMethods(),
			AllowedHeaders: append(connectcors.AllowedHeaders(), "Authorization"),
			ExposedHeaders: append(connectcors.ExposedHeaders(), "Age"),
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
