package tracing

import (
	"context"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	"go.opentelemetry.io/otel/trace/noop"
)

var noopTracer = noop.NewTracerProvider().Tracer("")

// ChildrenOnly returns a TracerProvider whose tracers start spans only
// within a span: where the context holds none, Start returns a span that
// records nothing. It keeps background work that runs on its own (the
// lease's renewals, the mirror's polls) from filling the tracing backend
// with traces of one Redis command each, while the same commands made by a
// traced call or refresh appear in its trace. Nil stays nil.
func ChildrenOnly(tp trace.TracerProvider) trace.TracerProvider {
	if tp == nil {
		return nil
	}
	return childrenOnlyProvider{tp: tp}
}

type childrenOnlyProvider struct {
	embedded.TracerProvider
	tp trace.TracerProvider
}

// Tracer implements trace.TracerProvider.
func (p childrenOnlyProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return childrenOnlyTracer{t: p.tp.Tracer(name, opts...)}
}

type childrenOnlyTracer struct {
	embedded.Tracer
	t trace.Tracer
}

// Start implements trace.Tracer.
func (t childrenOnlyTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return noopTracer.Start(ctx, name, opts...)
	}
	return t.t.Start(ctx, name, opts...)
}
