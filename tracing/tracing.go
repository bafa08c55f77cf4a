// Package tracing turns OpenTelemetry traces on from the standard OTEL_*
// environment, and puts the current trace and span ids on log lines.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// ServiceName is the service.name of the spans unless OTEL_SERVICE_NAME
// (or service.name in OTEL_RESOURCE_ATTRIBUTES) says otherwise.
const ServiceName = "vpnfacade"

// Environment variables read by FromEnv, as the OpenTelemetry specification
// names them.
const (
	EnvSDKDisabled         = "OTEL_SDK_DISABLED"
	EnvTracesExporter      = "OTEL_TRACES_EXPORTER"
	EnvEndpoint            = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvProtocol            = "OTEL_EXPORTER_OTLP_PROTOCOL"
	protocolGRPC           = "grpc"
	protocolHTTPProtobuf   = "http/protobuf"
	exporterOTLP           = "otlp"
	exporterNone           = "none"
	httpTracesPathFromBase = "/v1/traces"
)

// Tracing is a process's tracing: a TracerProvider exporting spans over
// OTLP, or nothing at all.
type Tracing struct {
	// TracerProvider exports the spans; nil when tracing is off. Pass it
	// to the TracerProvider field of each package's Options.
	TracerProvider trace.TracerProvider
	// Exporter says where spans are sent ("otlp grpc http://host:4317"),
	// or is "" when tracing is off.
	Exporter string

	shutdown func(context.Context) error
}

// FromEnv reads the standard environment with getenv and returns the
// tracing it configures. Tracing is off (a Tracing with a nil
// TracerProvider) unless an exporter is configured: OTEL_TRACES_EXPORTER is
// "otlp", or, with it unset, OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set. OTEL_TRACES_EXPORTER=none and
// OTEL_SDK_DISABLED=true turn it off.
//
// The protocol is OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else
// OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf" (the default) or "grpc".
// The endpoint is OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given, else
// OTEL_EXPORTER_OTLP_ENDPOINT (with /v1/traces appended over HTTP), else
// the exporter's default (localhost, port 4318 over HTTP, 4317 over gRPC).
// getenv also gives the exporter's other settings, each with its TRACES_
// form first: OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT (milliseconds, default
// 10 s), _COMPRESSION (gzip or none), _CERTIFICATE, _CLIENT_CERTIFICATE and
// _CLIENT_KEY. The SDK reads the batch processor's and the sampler's
// (OTEL_BSP_*, OTEL_TRACES_SAMPLER) and the service's description
// (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) from the process
// environment.
//
// FromEnv makes no network call: spans are exported in the background,
// and Shutdown sends what is left.
func FromEnv(ctx context.Context, getenv func(string) string) (*Tracing, error) {
	if strings.EqualFold(strings.TrimSpace(getenv(EnvSDKDisabled)), "true") {
		return &Tracing{}, nil
	}
	switch exporter := strings.TrimSpace(getenv(EnvTracesExporter)); exporter {
	case "":
		if endpoint, _ := signalVar(getenv, EnvEndpoint); endpoint == "" {
			return &Tracing{}, nil
		}
	case exporterNone:
		return &Tracing{}, nil
	case exporterOTLP:
	default:
		return nil, fmt.Errorf("%s: %q is not supported: use %s or %s", EnvTracesExporter, quote(exporter), exporterOTLP, exporterNone)
	}
	protocol, protocolVar := signalVar(getenv, EnvProtocol)
	switch protocol {
	case "":
		protocol = protocolHTTPProtobuf
	case protocolHTTPProtobuf, protocolGRPC:
	default:
		return nil, fmt.Errorf("%s: %q is not supported: use %s or %s", protocolVar, quote(protocol), protocolHTTPProtobuf, protocolGRPC)
	}
	settings, err := readSettings(getenv, protocol)
	if err != nil {
		return nil, err
	}
	exp := otlptrace.NewUnstarted(newOTLPClient(settings))
	if err := exp.Start(ctx); err != nil {
		return nil, fmt.Errorf("tracing: starting the OTLP exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", ServiceName)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(),
	)
	if err != nil && res == nil {
		return nil, errors.Join(fmt.Errorf("tracing: resource: %w", err), exp.Shutdown(ctx))
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Tracing{TracerProvider: tp, Exporter: settings.description, shutdown: tp.Shutdown}, nil
}

// Enabled reports whether spans are exported.
func (t *Tracing) Enabled() bool { return t.TracerProvider != nil }

// Shutdown exports the spans not sent yet and stops the exporter, within
// ctx. It does nothing when tracing is off.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t.shutdown == nil {
		return nil
	}
	if err := t.shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: exporting the last spans: %w", err)
	}
	return nil
}

// Propagator is how trace context travels in requests: W3C Trace Context
// (traceparent, tracestate) and W3C Baggage.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// Tracer returns the tracer of an instrumentation scope (a package's import
// path) from tp, or a tracer that records nothing when tp is nil.
func Tracer(tp trace.TracerProvider, scope string) trace.Tracer {
	if tp == nil {
		return noopTracer
	}
	return tp.Tracer(scope)
}

// quote bounds a configuration value quoted in an error.
func quote(s string) string {
	const limit = 64
	if len(s) > limit {
		return s[:limit] + "…"
	}
	return s
}
