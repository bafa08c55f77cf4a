package server

import (
	"context"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
)

// requestMetrics counts and times Connect requests by procedure and code.
type requestMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newRequestMetrics(reg prometheus.Registerer) *requestMetrics {
	m := &requestMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpnfacade_requests_total",
			Help: "Requests answered, by API, procedure and result code.",
		}, []string{"api", "procedure", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vpnfacade_request_duration_seconds",
			Help:    "Time to answer a request, by API and procedure.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"api", "procedure"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// observe records one request.
func (m *requestMetrics) observe(api, procedure, code string, took time.Duration) {
	m.requests.WithLabelValues(api, procedure, code).Inc()
	m.duration.WithLabelValues(api, procedure).Observe(took.Seconds())
}

// WrapUnary implements connect.Interceptor.
func (m *requestMetrics) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		start := time.Now()
		res, err := next(ctx, req)
		code := "ok"
		if err != nil {
			code = connect.CodeOf(err).String()
		}
		m.observe("connect", req.Spec().Procedure, code, time.Since(start))
		return res, err
	}
}

// WrapStreamingClient implements connect.Interceptor.
func (m *requestMetrics) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor.
func (m *requestMetrics) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		start := time.Now()
		err := next(ctx, conn)
		code := "ok"
		if err != nil {
			code = connect.CodeOf(err).String()
		}
		m.observe("connect", conn.Spec().Procedure, code, time.Since(start))
		return err
	}
}
