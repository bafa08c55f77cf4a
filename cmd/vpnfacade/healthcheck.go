package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
)

// healthcheckCommand is the first argument that selects the healthcheck
// subcommand: `vpnfacade healthcheck [flags]`.
const healthcheckCommand = "healthcheck"

// healthcheckMaxEcho bounds how much of a user-given value an error repeats.
const healthcheckMaxEcho = 64

// runHealthcheck is `vpnfacade healthcheck`: it asks the gRPC health service
// (grpc.health.v1.Health/Check, over gRPC like a Kubernetes gRPC probe) of a
// running vpnfacade whether it is SERVING, and returns the process exit
// code: 0 when it is, 1 otherwise (Docker HEALTHCHECK reserves 2).
//
// Without --addr it checks the address this container's server listens on,
// from VPNFACADE_LISTEN (default :8080; an empty or unspecified host means
// loopback) and VPNFACADE_TLS_CERT (https when set), so that an image's
// HEALTHCHECK needs no arguments. The image has no shell and no HTTP health
// path, hence a subcommand of the binary itself.
func runHealthcheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vpnfacade healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `vpnfacade healthcheck asks a running vpnfacade's gRPC health service
whether it is SERVING (it is once a snapshot can answer reads). It exits 0
when it is and 1 otherwise, for Docker HEALTHCHECK and compose healthcheck.

Usage: vpnfacade healthcheck [flags]

Flags:
`)
		fs.PrintDefaults()
	}
	addr := fs.String("addr", "", "address to check: host:port or http(s)://host:port (default: from VPNFACADE_LISTEN, with https when VPNFACADE_TLS_CERT is set)")
	service := fs.String("service", "", "service to ask about; empty asks about the whole server")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	insecure := fs.Bool("insecure-skip-verify", false, "with https, accept any server certificate (the check sends nothing secret)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 1
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vpnfacade healthcheck: unexpected argument %q\n", healthcheckEcho(fs.Arg(0)))
		return 1
	}
	if *timeout <= 0 {
		fmt.Fprintf(stderr, "vpnfacade healthcheck: --timeout must be positive, got %s\n", *timeout)
		return 1
	}
	target, err := healthcheckURL(*addr, getenv)
	if err != nil {
		fmt.Fprintln(stderr, "vpnfacade healthcheck:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	status, err := checkHealth(ctx, target, *service, *insecure)
	if err != nil {
		fmt.Fprintf(stderr, "vpnfacade healthcheck: %s: %v\n", target, err)
		return 1
	}
	if status != grpchealth.StatusServing {
		fmt.Fprintf(stderr, "vpnfacade healthcheck: %s: %s\n", target, strings.ToUpper(status.String()))
		return 1
	}
	fmt.Fprintln(stdout, strings.ToUpper(status.String())) // as the proto enum: SERVING
	return 0
}

// checkHealth calls grpc.health.v1.Health/Check at target over gRPC: h2c
// (HTTP/2 with prior knowledge) for http://, HTTP/2 over TLS for https://.
func checkHealth(ctx context.Context, target, service string, insecure bool) (grpchealth.Status, error) {
	var protocols http.Protocols
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(true)
	transport := &http.Transport{
		Protocols:       &protocols,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: insecure}, //nolint:gosec // opt-in, for self-signed certificates on loopback
	}
	defer transport.CloseIdleConnections()
	client := grpchealth.NewClient(&http.Client{Transport: transport}, target, connect.WithGRPC())
	res, err := client.Check(ctx, &grpchealth.CheckRequest{Service: service})
	if err != nil {
		return grpchealth.StatusUnknown, fmt.Errorf("asking the health service: %w", err)
	}
	return res.Status, nil
}

// healthcheckURL returns the base URL to check: addr when given (host:port,
// or an http or https URL), else the local server's from the environment.
func healthcheckURL(addr string, getenv func(string) string) (string, error) {
	tlsOn := getenv("VPNFACADE_TLS_CERT") != ""
	if addr == "" {
		listen := getenv("VPNFACADE_LISTEN")
		if listen == "" {
			listen = ":8080" // the --listen default
		}
		u, err := hostPortURL(listen, tlsOn)
		if err != nil {
			return "", fmt.Errorf("VPNFACADE_LISTEN: %w", err)
		}
		return u, nil
	}
	if u, err := url.Parse(addr); err == nil && u.Scheme != "" && u.Host != "" {
		if u.Scheme != "http" && u.Scheme != "https" {
			return "", fmt.Errorf("--addr %q: the scheme must be http or https", healthcheckEcho(addr))
		}
		if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
			return "", fmt.Errorf("--addr %q: give only scheme://host:port", healthcheckEcho(addr))
		}
		return u.Scheme + "://" + u.Host, nil
	}
	u, err := hostPortURL(addr, tlsOn)
	if err != nil {
		return "", fmt.Errorf("--addr: %w", err)
	}
	return u, nil
}

// hostPortURL turns a listen address into the URL a local client dials: an
// empty or unspecified host becomes the loopback address of its family.
func hostPortURL(hostPort string, tlsOn bool) (string, error) {
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil || port == "" {
		return "", fmt.Errorf("%q is not host:port or http(s)://host:port", healthcheckEcho(hostPort))
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	scheme := "http"
	if tlsOn {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}

// healthcheckEcho shortens s for an error message.
func healthcheckEcho(s string) string {
	if len(s) <= healthcheckMaxEcho {
		return s
	}
	return strings.ToValidUTF8(s[:healthcheckMaxEcho], "") + "…"
}
