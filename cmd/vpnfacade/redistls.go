package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// redisTLS reads --redis-ca-file, --redis-cert-file and --redis-key-file
// into the TLS settings of a rediss:// connection; nil when none is set
// (the system's CAs, no client certificate). Errors name the flag and the
// file, never a file's content.
func redisTLS(cfg *settings) (*tls.Config, error) {
	if cfg.redisCAFile == "" && cfg.redisCertFile == "" {
		return nil, nil
	}
	out := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.redisCAFile != "" {
		pem, err := os.ReadFile(cfg.redisCAFile)
		if err != nil {
			return nil, fmt.Errorf("--redis-ca-file: %w", err)
		}
		out.RootCAs = x509.NewCertPool()
		if !out.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--redis-ca-file: %s holds no PEM certificate", cfg.redisCAFile)
		}
	}
	if cfg.redisCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.redisCertFile, cfg.redisKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--redis-cert-file and --redis-key-file: %w", err)
		}
		out.Certificates = []tls.Certificate{cert}
	}
	return out, nil
}
