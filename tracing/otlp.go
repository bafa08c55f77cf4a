package tracing

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
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

// UploadTraces implements otlptrace.Client.
func (c *otlpClient) UploadTraces(ctx context.Context, spans []*tracepb.ResourceSpans) error {
	body, err := exportRequest(spans)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.s.timeout)
	defer cancel()
	if c.export != nil {
		req := connect.NewRequest(&rawMessage{b: body})
		for k, vs := range c.s.headers {
			req.Header()[k] = vs
		}
		if _, err := c.export.CallUnary(ctx, req); err != nil {
			return fmt.Errorf("OTLP gRPC export: %w", err)
		}
		return nil
	}
	return c.post(ctx, body)
}

// post sends an export over HTTP.
func (c *otlpClient) post(ctx context.Context, body []byte) error {
	var payload io.Reader = bytes.NewReader(body)
	if c.s.gzip {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(body); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		payload = &buf
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.s.endpoint, payload)
	if err != nil {
		return fmt.Errorf("OTLP HTTP export: %w", err)
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
		return fmt.Errorf("OTLP HTTP export: %w", err)
	}
	defer res.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("OTLP HTTP export: %s: %s", res.Status, quote(strings.ToValidUTF8(string(msg), "?")))
	}
	return nil
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

// rawCodec is connect-go's "proto" codec for messages already encoded.
type rawCodec struct{}

// Name implements connect.Codec.
func (rawCodec) Name() string { return "proto" }

// Marshal implements connect.Codec.
func (rawCodec) Marshal(msg any) ([]byte, error) {
	m, ok := msg.(*rawMessage)
	if !ok {
		return nil, errors.New("raw codec: not a raw message")
	}
	return m.b, nil
}

// Unmarshal implements connect.Codec. The response (an
// ExportTraceServiceResponse, whose partial_success says how many spans
// the collector rejected) is kept as received.
func (rawCodec) Unmarshal(data []byte, msg any) error {
	m, ok := msg.(*rawMessage)
	if !ok {
		return errors.New("raw codec: not a raw message")
	}
	m.b = append(m.b[:0], data...)
	return nil
}
