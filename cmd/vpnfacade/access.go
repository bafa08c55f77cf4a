package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/vpnfacade/vpnfacade/access"
)

// startAccess loads --access-file and watches it, and returns the TLS
// settings for --tls-client-ca (nil when it is not set). With an access
// file, a client certificate is optional (a bearer token may stand in for
// it) and its identity picks the principal; without one, every client must
// present a certificate from the CA and reads everything.
func (m *Main) startAccess(ctx context.Context) (*tls.Config, error) {
	cfg, logger := m.cfg, m.logger
	if cfg.accessFile != "" {
		a, err := access.New(access.Options{Path: cfg.accessFile, Logger: logger.With("component", "access")})
		if err != nil {
			return nil, fmt.Errorf("--access-file: %w", err)
		}
		watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
		stopped, err := a.Watch(watchCtx)
		if err != nil {
			stopWatch()
			return nil, fmt.Errorf("--access-file: %w", err)
		}
		m.onClose(func() error { stopWatch(); <-stopped; return nil })
		m.access = a
	}
	var tlsConfig *tls.Config
	if cfg.tlsClientCA != "" {
		pem, err := os.ReadFile(cfg.tlsClientCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-client-ca: %s holds no PEM certificate", cfg.tlsClientCA)
		}
		tlsConfig = &tls.Config{ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
		if m.access != nil {
			tlsConfig.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	switch {
	case m.access != nil:
		logger.Info("access control on", "access_file", cfg.accessFile, "client_ca", cfg.tlsClientCA != "")
	case tlsConfig != nil:
		logger.Info("access control: any client certificate from --tls-client-ca reads everything")
	default:
		logger.Warn("access control off: anyone who can reach the service reads every endpoint; set --access-file for production")
	}
	return tlsConfig, nil
}

// ReloadAccess reloads --access-file, as SIGHUP asks. The previous file
// stays in use when the new one is invalid.
func (m *Main) ReloadAccess() error {
	if m.access == nil {
		return errors.New("no --access-file to reload")
	}
	return m.access.Reload()
}

// runAccessCommand runs "vpnfacade access new-token" or "vpnfacade access
// new-access-key": it prints new credentials and what goes in the access
// file for them.
func runAccessCommand(args []string, stdout, stderr io.Writer) error {
	usage := "usage: vpnfacade access new-token | new-access-key"
	if len(args) != 1 {
		return errors.New(usage)
	}
	switch args[0] {
	case "new-token":
		token, hash, err := access.NewToken()
		if err != nil {
			return err
		}
		fmt.Fprintln(stderr, "# Give the token to its caller (Authorization: Bearer <token>); it is not stored anywhere.")
		fmt.Fprintln(stderr, "# Put its SHA-256 in the principal's tokens_sha256 in the access file.")
		fmt.Fprintf(stdout, "token: %s\ntokens_sha256: %s\n", token, hash)
	case "new-access-key":
		id, secret, err := access.NewAccessKey()
		if err != nil {
			return err
		}
		fmt.Fprintln(stderr, "# Put both in the principal's access_keys in the access file, and give them to its")
		fmt.Fprintln(stderr, "# caller as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for the EC2-compatible endpoint.")
		fmt.Fprintf(stdout, "access_key_id: %s\nsecret_access_key: %s\n", id, secret)
	default:
		return fmt.Errorf("unknown access command %q; %s", args[0], usage)
	}
	return nil
}
