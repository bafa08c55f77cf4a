package server

import (
	"context"
	"errors"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
)

// requestMetrics counts and times requests by protocol, procedure and code.
// The protocol label is the one connect-go recognised (connect.ProtocolGRPC,
// ProtocolGRPCWeb or ProtocolConnect: "grpc", "grpcweb", "connect"), or
// "ec2" for the EC2 Query API (EC2Handler).
type requestMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newRequestMetrics(reg prometheus.Registerer) *requestMetrics {
	m := &requestMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpnfacade_requests_total",
			Help: "Requests answered, by protocol (grpc, grpcweb, connect or ec2), procedure (or EC2 action) and result code.",
		}, []string{"protocol", "procedure", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vpnfacade_request_duration_seconds",
			Help:    "Time to answer a request, by protocol (grpc, grpcweb, connect or ec2) and procedure (or EC2 action).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"protocol", "procedure"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// observe records one request.
func (m *requestMetrics) observe(protocol, procedure, code string, took time.Duration) {
	m.requests.WithLabelValues(protocol, procedure, code).Inc()
	m.duration.WithLabelValues(protocol, procedure).Observe(took.Seconds())
}

// connectProtocol is the protocol label of a request served by connect-go:
// the protocol its handler recognised (grpc, grpcweb or connect).
func connectProtocol(peer connect.Peer) string {
	if peer.Protocol == "" {
		return "unknown"
	}
	return peer.Protocol
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
		m.observe(connectProtocol(req.Peer()), req.Spec().Procedure, code, time.Since(start))
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
		m.observe(connectProtocol(conn.Peer()), conn.Spec().Procedure, code, time.Since(start))
		return err
	}
}

// snapshotCollector exports the state of the current snapshot at scrape
// time: its version, size, age and staleness.
type snapshotCollector struct {
	reader                                *Reader
	version, endpoints, age, stale, ready *prometheus.Desc
}

// newSnapshotCollector returns a collector describing the snapshot reader
// answers from.
func newSnapshotCollector(reader *Reader) prometheus.Collector {
	return &snapshotCollector{
		reader:    reader,
		version:   prometheus.NewDesc("vpnfacade_snapshot_version", "Version of the snapshot reads are answered from.", nil, nil),
		endpoints: prometheus.NewDesc("vpnfacade_snapshot_endpoints", "Endpoints in the snapshot reads are answered from.", nil, nil),
		age:       prometheus.NewDesc("vpnfacade_snapshot_age_seconds", "Seconds since the snapshot reads are answered from was refreshed.", nil, nil),
		stale:     prometheus.NewDesc("vpnfacade_snapshot_stale", "1 when answers may be out of date (backend unreachable or a partition failed its refresh).", nil, nil),
		ready:     prometheus.NewDesc("vpnfacade_snapshot_ready", "1 when a snapshot can answer reads.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *snapshotCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.version, c.endpoints, c.age, c.stale, c.ready} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	view, err := c.reader.store.Current(context.Background())
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, 0)
		return
	}
	_, readErr := c.reader.View(context.Background())
	ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, boolGauge(readErr == nil))
	ch <- prometheus.MustNewConstMetric(c.version, prometheus.GaugeValue, float64(view.Version))
	ch <- prometheus.MustNewConstMetric(c.endpoints, prometheus.GaugeValue, float64(view.Len()))
	ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, time.Since(view.RefreshedAt).Seconds())
	ch <- prometheus.MustNewConstMetric(c.stale, prometheus.GaugeValue, boolGauge(view.Stale()))
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// NewRefusalCounter returns the counter of calls or connections refused for
// reason (vpnfacade_refused_total{reason}), registered with reg once for
// all reasons.
func NewRefusalCounter(reg prometheus.Registerer, reason string) prometheus.Counter {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vpnfacade_refused_total",
		Help: "Calls and connections refused by a per-client limit, by reason (list_rate_per_address, list_share_per_address, connections_per_address).",
	}, []string{"reason"})
	if err := reg.Register(vec); err != nil {
		var already prometheus.AlreadyRegisteredError
		if !errors.As(err, &already) {
			panic(err)
		}
		vec = already.ExistingCollector.(*prometheus.CounterVec)
	}
	return vec.WithLabelValues(reason)
}
