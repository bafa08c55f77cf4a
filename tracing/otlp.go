package tracing

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// This file sends OTLP trace exports itself, over HTTP (protobuf) and over
// gRPC (through connect-go, which this service already serves gRPC with),
// instead of using the SDK's otlptracehttp and otlptracegrpc exporters:
// both import google.golang.org/grpc (the collector's service stubs), which
// imports html/template through golang.org/x/net/trace, and a reachable
// template engine makes the linker keep every exported method of every type
// in an interface: the EC2 SDK's thousands of operations took the binary
// from 27 MB to 83 MB.

// Defaults of the OTLP exporter, from the OpenTelemetry specification.
const (
	defaultHTTPEndpoint = "http://localhost:4318" + httpTracesPathFromBase
	defaultGRPCEndpoint = "http://localhost:4317"
	defaultTimeout      = 10 * time.Second
	grpcExportPath      = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
	maxErrorBody        = 512

	// An export that failed for a transient reason is sent again after
	// defaultRetryBase, then twice as long each time up to maxRetryWait
	// (jittered), within the export timeout.
	defaultRetryBase = 250 * time.Millisecond
	maxRetryWait     = 5 * time.Second
)

// exporterSettings are the OTLP exporter's settings, read from the
// environment.
type exporterSettings struct {
	protocol    string // protocolHTTPProtobuf or protocolGRPC
	endpoint    string // the full URL of an HTTP export; the base URL over gRPC
	headers     http.Header
	timeout     time.Duration
	gzip        bool
	tlsConfig   *tls.Config // nil: the system's roots
	description string
	retryBase   time.Duration // 0: defaultRetryBase (tests shorten it)
}

// signalVar returns the traces-specific variable when it is set, else the
// general one, with the name of the variable it came from.
func signalVar(getenv func(string) string, name string) (value, from string) {
	specific := strings.Replace(name, "OTEL_EXPORTER_OTLP_", "OTEL_EXPORTER_OTLP_TRACES_", 1)
	if v := strings.TrimSpace(getenv(specific)); v != "" {
		return v, specific
	}
	return strings.TrimSpace(getenv(name)), name
}

// readSettings reads the exporter's settings; protocol is already checked.
func readSettings(getenv func(string) string, protocol string) (exporterSettings, error) {
	s := exporterSettings{protocol: protocol, headers: http.Header{}, timeout: defaultTimeout}
	endpoint, from := signalVar(getenv, EnvEndpoint)
	switch {
	case endpoint == "" && protocol == protocolGRPC:
		endpoint = defaultGRPCEndpoint
	case endpoint == "":
		endpoint = defaultHTTPEndpoint
	case protocol == protocolHTTPProtobuf && from == EnvEndpoint:
		// The general endpoint is a base: each signal has its path.
		endpoint = strings.TrimSuffix(endpoint, "/") + httpTracesPathFromBase
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return s, fmt.Errorf("%s: %q is not an http:// or https:// URL", from, quote(endpoint))
	}
	if protocol == protocolGRPC {
		u.Path = strings.TrimSuffix(u.Path, "/") + grpcExportPath
	}
	s.endpoint = u.String()
	s.description = "otlp " + protocol + " " + u.Scheme + "://" + u.Host

	if h, from := signalVar(getenv, "OTEL_EXPORTER_OTLP_HEADERS"); h != "" {
		for _, pair := range strings.Split(h, ",") {
			k, v, ok := strings.Cut(pair, "=")
			key, kerr := url.QueryUnescape(strings.TrimSpace(k))
			value, verr := url.QueryUnescape(strings.TrimSpace(v))
			if !ok || key == "" || kerr != nil || verr != nil {
				// The value may be a secret: never quote it.
				return s, fmt.Errorf("%s: an entry is not key=value (URL-encoded)", from)
			}
			s.headers.Add(key, value)
		}
	}
	if t, from := signalVar(getenv, "OTEL_EXPORTER_OTLP_TIMEOUT"); t != "" {
		ms, err := strconv.Atoi(t)
		if err != nil || ms <= 0 {
			return s, fmt.Errorf("%s: %q is not a positive number of milliseconds", from, quote(t))
		}
		s.timeout = time.Duration(ms) * time.Millisecond
	}
	switch c, from := signalVar(getenv, "OTEL_EXPORTER_OTLP_COMPRESSION"); c {
	case "", "none":
	case "gzip":
		s.gzip = true
	default:
		return s, fmt.Errorf("%s: %q is not supported: use gzip or none", from, quote(c))
	}
	if ca, from := signalVar(getenv, "OTEL_EXPORTER_OTLP_CERTIFICATE"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return s, fmt.Errorf("%s: %w", from, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return s, fmt.Errorf("%s: %s holds no PEM certificate", from, quote(ca))
		}
		s.tlsConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	cert, certFrom := signalVar(getenv, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE")
	key, keyFrom := signalVar(getenv, "OTEL_EXPORTER_OTLP_CLIENT_KEY")
	if cert != "" || key != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return s, fmt.Errorf("%s and %s: %w", certFrom, keyFrom, err)
		}
		if s.tlsConfig == nil {
			s.tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		s.tlsConfig.Certificates = []tls.Certificate{pair}
	}
	return s, nil
}

// otlpClient is an otlptrace.Client sending each batch as one
// ExportTraceServiceRequest.
type otlpClient struct {
	s      exporterSettings
	http   *http.Client
	export *connect.Client[rawMessage, rawMessage] // over gRPC only
}

var _ otlptrace.Client = (*otlpClient)(nil)

func newOTLPClient(s exporterSettings) *otlpClient {
	var protocols http.Protocols
	protocols.SetHTTP1(s.protocol == protocolHTTPProtobuf)
	protocols.SetHTTP2(true)
	// gRPC needs HTTP/2, without TLS too ("http://" endpoints).
	protocols.SetUnencryptedHTTP2(s.protocol == protocolGRPC)
	transport := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		Protocols:           &protocols,
		TLSClientConfig:     s.tlsConfig,
		TLSHandshakeTimeout: s.timeout,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     90 * time.Second,
	}
	c := &otlpClient{s: s, http: &http.Client{Transport: transport}}
	if s.protocol == protocolGRPC {
		opts := []connect.ClientOption{connect.WithGRPC(), connect.WithCodec(rawCodec{})}
		if s.gzip {
			opts = append(opts, connect.WithSendGzip())
		}
		c.export = connect.NewClient[rawMessage, rawMessage](c.http, s.endpoint, opts...)
	}
	return c
}

// Start implements otlptrace.Client.
func (c *otlpClient) Start(context.Context) error { return nil }

// Stop implements otlptrace.Client.
func (c *otlpClient) Stop(context.Context) error {
	c.http.CloseIdleConnections()
	return nil
}

// UploadTraces implements otlptrace.Client. A failure the OTLP
// specification calls transient (the collector is unavailable or asks to
// slow down, or the connection failed) is sent again after a growing,
// jittered wait, or the wait the collector asked for; all attempts share
// the export timeout, so a collector that stays down costs one timeout
// per batch, as before.
func (c *otlpClient) UploadTraces(ctx context.Context, spans []*tracepb.ResourceSpans) error {
	body, err := exportRequest(spans)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.s.timeout)
	defer cancel()
	backoff := cmp.Or(c.s.retryBase, defaultRetryBase)
	for attempt := 1; ; attempt++ {
		var after time.Duration
		var retry bool
		if c.export != nil {
			retry, after, err = c.call(ctx, body)
		} else {
			retry, after, err = c.post(ctx, body)
		}
		if err == nil || !retry || ctx.Err() != nil {
			return err
		}
		wait := max(after, backoff/2+rand.N(backoff/2+1))
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return fmt.Errorf("%w (attempt %d; no time left within the export timeout to wait %v for another)", err, attempt, wait.Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (attempt %d)", err, attempt)
		case <-time.After(wait):
		}
		backoff = min(2*backoff, maxRetryWait)
	}
}

// call sends an export over gRPC. retry says whether the failure is one
// the OTLP specification lets an exporter retry; after is the wait the
// collector asked for (RetryInfo), if any.
func (c *otlpClient) call(ctx context.Context, body []byte) (retry bool, after time.Duration, err error) {
	req := connect.NewRequest(&rawMessage{b: body})
	for k, vs := range c.s.headers {
		req.Header()[k] = vs
	}
	_, err = c.export.CallUnary(ctx, req)
	if err == nil {
		return false, 0, nil
	}
	err = fmt.Errorf("OTLP gRPC export: %w", err)
	var delay time.Duration
	var asked bool
	var connectErr *connect.Error
	if errors.As(err, &connectErr) {
		for _, d := range connectErr.Details() {
			if v, derr := d.Value(); derr == nil {
				if info, ok := v.(*errdetails.RetryInfo); ok && info.GetRetryDelay() != nil {
					delay, asked = info.GetRetryDelay().AsDuration(), true
				}
			}
		}
	}
	switch connect.CodeOf(err) {
	case connect.CodeUnavailable, connect.CodeAborted, connect.CodeOutOfRange, connect.CodeDataLoss:
		return true, delay, err
	case connect.CodeResourceExhausted:
		// Only when the collector says when to come back.
		return asked, delay, err
	}
	return false, 0, err
}

// post sends an export over HTTP. retry and after are as for call; after
// comes from a Retry-After header in seconds.
func (c *otlpClient) post(ctx context.Context, body []byte) (retry bool, after time.Duration, err error) {
	var payload io.Reader = bytes.NewReader(body)
	if c.s.gzip {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(body); err != nil {
			return false, 0, err
		}
		if err := zw.Close(); err != nil {
			return false, 0, err
		}
		payload = &buf
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.s.endpoint, payload)
	if err != nil {
		return false, 0, fmt.Errorf("OTLP HTTP export: %w", err)
	}
	for k, vs := range c.s.headers {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if c.s.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	res, err := c.http.Do(req)
	if err != nil {
		// The connection failed (refused, reset): the collector may be
		// restarting. A cancelled or expired context ends the loop anyway.
		return true, 0, fmt.Errorf("OTLP HTTP export: %w", err)
	}
	defer res.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
	if res.StatusCode/100 == 2 {
		return false, 0, nil
	}
	err = fmt.Errorf("OTLP HTTP export: %s: %s", res.Status, quote(strings.ToValidUTF8(string(msg), "?")))
	switch res.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		// A wait longer than the export timeout ends this export.
		if secs, perr := strconv.Atoi(strings.TrimSpace(res.Header.Get("Retry-After"))); perr == nil && secs >= 0 {
			after = time.Duration(min(secs, 24*60*60)) * time.Second
		}
		return true, after, err
	}
	return false, 0, err
}

// exportRequest encodes an ExportTraceServiceRequest holding spans: its
// one field, resource_spans (1), repeated. Encoding it here spares the
// collector package and the gRPC library it imports.
func exportRequest(spans []*tracepb.ResourceSpans) ([]byte, error) {
	var out []byte
	for _, rs := range spans {
		b, err := proto.Marshal(rs)
		if err != nil {
			return nil, fmt.Errorf("encoding spans: %w", err)
		}
		out = protowire.AppendTag(out, 1, protowire.BytesType)
		out = protowire.AppendBytes(out, b)
	}
	return out, nil
}

// rawMessage is an encoded protobuf message, passed through rawCodec.
type rawMessage struct{ b []byte }

// rawCodec is connect-go's "proto" codec for messages already encoded; it
// also encodes and decodes connect-go's own messages, the error statuses
// whose details carry a collector's RetryInfo.
type rawCodec struct{}

// Name implements connect.Codec.
func (rawCodec) Name() string { return "proto" }

// Marshal implements connect.Codec.
func (rawCodec) Marshal(msg any) ([]byte, error) {
	switch m := msg.(type) {
	case *rawMessage:
		return m.b, nil
	case proto.Message: // connect-go's own: a status with its details
		return proto.Marshal(m)
	}
	return nil, fmt.Errorf("raw codec: cannot encode %T", msg)
}

// Unmarshal implements connect.Codec. The response (an
// ExportTraceServiceResponse, whose partial_success says how many spans
// the collector rejected) is kept as received.
func (rawCodec) Unmarshal(data []byte, msg any) error {
	switch m := msg.(type) {
	case *rawMessage:
		m.b = append(m.b[:0], data...)
		return nil
	case proto.Message: // an error's details, such as the collector's RetryInfo
		return proto.Unmarshal(data, m)
	}
	return fmt.Errorf("raw codec: cannot decode into %T", msg)
}
