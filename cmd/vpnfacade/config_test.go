package main

import (
	"bytes"
	"errors"
	"flag"
	"slices"
	"strings"
	"testing"
	"time"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestConfigDefaultsEnvAndFlags(t *testing.T) {
	c, err := parseConfig(nil, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.listen != ":8080" || c.redisURL != "" || c.refreshInterval != time.Minute || c.maxStaleness != time.Hour || c.demo || c.namespace != "default" {
		t.Errorf("defaults = %+v", c)
	}
	c, err = parseConfig([]string{"--regions", "eu-west-1"}, env(map[string]string{
		"VPNFACADE_LISTEN":           "127.0.0.1:9000",
		"VPNFACADE_REDIS_URL":        "redis://127.0.0.1:6390/0",
		"VPNFACADE_REGIONS":          "us-east-1, us-west-2",
		"VPNFACADE_ASSUME_ROLES":     "arn:aws:iam::123456789012:role/a,arn:aws:iam::210987654321:role/b",
		"VPNFACADE_REFRESH_INTERVAL": "30s",
		"VPNFACADE_MAX_STALENESS":    "0",
		"VPNFACADE_DEMO":             "true",
	}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.listen != "127.0.0.1:9000" || c.redisURL != "redis://127.0.0.1:6390/0" || c.refreshInterval != 30*time.Second || c.maxStaleness != 0 || !c.demo {
		t.Errorf("from the environment: %+v", c)
	}
	if !slices.Equal(c.regions, []string{"eu-west-1"}) {
		t.Errorf("a flag must override its environment variable: regions = %v", c.regions)
	}
	if len(c.assumeRoles) != 2 {
		t.Errorf("assume roles = %v", c.assumeRoles)
	}
}

func TestConfigErrorsNameTheFlag(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--refresh-interval", "soon"}, nil, "--refresh-interval"},
		{nil, map[string]string{"VPNFACADE_REFRESH_INTERVAL": "0s"}, "--refresh-interval"},
		{[]string{"--max-staleness", "-1h"}, nil, "--max-staleness"},
		{[]string{"--lease-ttl", "0"}, nil, "--lease-ttl"},
		{[]string{"--tls-cert", "a.pem"}, nil, "--tls-cert and --tls-key go together"},
		{[]string{"--log-format", "xml"}, nil, "--log-format"},
		{[]string{"extra"}, nil, "unexpected arguments"},
		{[]string{"--no-such-flag"}, nil, "no-such-flag"},
		{[]string{"--tls-client-ca", "ca.pem"}, nil, "--tls-client-ca needs --tls-cert"},
	}
	for _, tc := range cases {
		var stderr bytes.Buffer
		_, err := parseConfig(tc.args, env(tc.env), &stderr)
		if err == nil || !strings.Contains(err.Error()+stderr.String(), tc.want) {
			t.Errorf("parseConfig(%q, %v) = %v; want an error naming %q", tc.args, tc.env, err, tc.want)
		}
	}
}

func TestHelpDocumentsEveryFlag(t *testing.T) {
	var stderr bytes.Buffer
	_, err := parseConfig([]string{"--help"}, env(nil), &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help = %v, want flag.ErrHelp", err)
	}
	for _, f := range []string{"listen", "redis-url", "regions", "assume-roles", "refresh-interval", "demo", "max-staleness", "lease-ttl", "allowed-origins", "tls-cert", "tls-key", "namespace", "account-id", "access-file", "tls-client-ca", "metrics-listen"} {
		if !strings.Contains(stderr.String(), "-"+f) {
			t.Errorf("--help does not document --%s", f)
		}
	}
	for _, v := range []string{"VPNFACADE_LISTEN", "VPNFACADE_REDIS_URL", "VPNFACADE_REGIONS", "VPNFACADE_ASSUME_ROLES", "VPNFACADE_REFRESH_INTERVAL", "VPNFACADE_ACCESS_FILE", "VPNFACADE_TLS_CLIENT_CA", "VPNFACADE_METRICS_LISTEN"} {
		if !strings.Contains(stderr.String(), v) {
			t.Errorf("--help does not name %s", v)
		}
	}
}
