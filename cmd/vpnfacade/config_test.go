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
	t.Parallel()
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
	if c.listShare != 0.5 {
		t.Errorf("default --list-share-per-address = %v, want 0.5", c.listShare)
	}
	if !slices.Equal(c.regions, []string{"eu-west-1"}) {
		t.Errorf("a flag must override its environment variable: regions = %v", c.regions)
	}
	if len(c.assumeRoles) != 2 {
		t.Errorf("assume roles = %v", c.assumeRoles)
	}
}

func TestConfigErrorsNameTheFlag(t *testing.T) {
	t.Parallel()
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
		{[]string{"--demo-count", "-1"}, nil, "--demo-count"},
		{[]string{"--list-share-per-address", "0"}, nil, "--list-share-per-address: \"0\" is not a number above 0 and at most 1"},
		{[]string{"--list-share-per-address", "1.5"}, nil, "--list-share-per-address"},
		{[]string{"--list-share-per-address", "NaN"}, nil, "--list-share-per-address"},
		{[]string{"--demo-count", "many"}, nil, "-demo-count"},
		{[]string{"--tls-client-ca", "ca.pem"}, nil, "--tls-client-ca needs --tls-cert"},
		{[]string{"--redis-url", "redis://127.0.0.1:6379", "--redis-ca-file", "ca.pem"}, nil, "--redis-ca-file needs a rediss:// --redis-url"},
		{nil, map[string]string{"VPNFACADE_REDIS_URL": "redis://127.0.0.1:6379", "VPNFACADE_REDIS_CERT_FILE": "c.pem", "VPNFACADE_REDIS_KEY_FILE": "k.pem"}, "VPNFACADE_REDIS_CERT_FILE (--redis-cert-file) needs a rediss://"},
		{[]string{"--redis-url", "rediss://127.0.0.1:6379", "--redis-cert-file", "c.pem"}, nil, "--redis-cert-file and --redis-key-file go together"},
	}
	for _, tc := range cases {
		var stderr bytes.Buffer
		_, err := parseConfig(tc.args, env(tc.env), &stderr)
		if err == nil || !strings.Contains(err.Error()+stderr.String(), tc.want) {
			t.Errorf("parseConfig(%q, %v) = %v; want an error naming %q", tc.args, tc.env, err, tc.want)
		}
	}
}

// TestConfigErrorsFromTheEnvironmentNameTheVariable: a value set through
// the environment is reported under the variable's name, which is what the
// operator has to fix (the flag may appear nowhere in their deployment).
func TestConfigErrorsFromTheEnvironmentNameTheVariable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"VPNFACADE_REFRESH_INTERVAL": "0s"}, []string{"VPNFACADE_REFRESH_INTERVAL (--refresh-interval)", `"0s"`, "positive duration"}},
		{map[string]string{"VPNFACADE_MAX_STALENESS": "soon"}, []string{"VPNFACADE_MAX_STALENESS (--max-staleness)", `"soon"`}},
		{map[string]string{"VPNFACADE_LEASE_TTL": "-5s"}, []string{"VPNFACADE_LEASE_TTL (--lease-ttl)"}},
		{map[string]string{"VPNFACADE_LOG_FORMAT": "xml"}, []string{"VPNFACADE_LOG_FORMAT (--log-format)", "auto, json, text"}},
		{map[string]string{"VPNFACADE_TLS_CERT": "a.pem"}, []string{"VPNFACADE_TLS_CERT (--tls-cert) and --tls-key go together"}},
		{map[string]string{"VPNFACADE_DEMO": "yes"}, []string{"VPNFACADE_DEMO (--demo)", `"yes"`, "true, false, 1, 0"}},
		{map[string]string{"VPNFACADE_DEMO_COUNT": "lots"}, []string{"VPNFACADE_DEMO_COUNT (--demo-count)", `"lots"`, "whole number"}},
		{map[string]string{"VPNFACADE_DEMO_COUNT": "-3"}, []string{"VPNFACADE_DEMO_COUNT (--demo-count)", "negative"}},
		// A long bad value is not echoed whole.
		{map[string]string{"VPNFACADE_REFRESH_INTERVAL": strings.Repeat("x", 200)}, []string{"VPNFACADE_REFRESH_INTERVAL", strings.Repeat("x", 64) + "…"}},
	}
	for _, tc := range cases {
		var stderr bytes.Buffer
		_, err := parseConfig(nil, env(tc.env), &stderr)
		if err == nil {
			t.Errorf("parseConfig(env %v) succeeded; want an error", tc.env)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("parseConfig(env %v) = %q; want it to contain %q", tc.env, err, w)
			}
		}
		if strings.Contains(err.Error(), strings.Repeat("x", 65)) {
			t.Errorf("the error echoes more than 64 characters of the value: %q", err)
		}
	}
	// The same bad value given as a flag is reported under the flag.
	_, err := parseConfig([]string{"--refresh-interval", "0s"}, env(nil), &bytes.Buffer{})
	if err == nil || !strings.HasPrefix(err.Error(), "--refresh-interval: ") {
		t.Errorf("--refresh-interval 0s = %v; want an error starting with the flag", err)
	}
	// A flag on the command line wins over a bad variable, which is then
	// not looked at.
	c, err := parseConfig([]string{"--demo-count", "7"}, env(map[string]string{"VPNFACADE_DEMO_COUNT": "lots"}), &bytes.Buffer{})
	if err != nil || c.demoCount != 7 {
		t.Errorf("--demo-count 7 with VPNFACADE_DEMO_COUNT=lots = %+v, %v; want 7", c, err)
	}
}

// TestConfigDemoFromTheEnvironment: --demo and --demo-count have their
// variables like every other flag.
func TestConfigDemoFromTheEnvironment(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env       map[string]string
		demo      bool
		demoCount int
	}{
		{nil, false, 500},
		{map[string]string{"VPNFACADE_DEMO": "true", "VPNFACADE_DEMO_COUNT": "20"}, true, 20},
		{map[string]string{"VPNFACADE_DEMO": "1"}, true, 500},
		{map[string]string{"VPNFACADE_DEMO": "false"}, false, 500},
		{map[string]string{"VPNFACADE_DEMO": "0", "VPNFACADE_DEMO_COUNT": "0"}, false, 0},
	} {
		c, err := parseConfig(nil, env(tc.env), &bytes.Buffer{})
		if err != nil {
			t.Errorf("env %v: %v", tc.env, err)
			continue
		}
		if c.demo != tc.demo || c.demoCount != tc.demoCount {
			t.Errorf("env %v: demo %v, demo count %d; want %v, %d", tc.env, c.demo, c.demoCount, tc.demo, tc.demoCount)
		}
	}
}

func TestHelpDocumentsEveryFlag(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	_, err := parseConfig([]string{"--help"}, env(nil), &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help = %v, want flag.ErrHelp", err)
	}
	for _, f := range []string{"listen", "redis-url", "regions", "assume-roles", "refresh-interval", "demo", "demo-count", "max-staleness", "lease-ttl", "allowed-origins", "tls-cert", "tls-key", "namespace", "account-id", "access-file", "tls-client-ca", "metrics-listen"} {
		if !strings.Contains(stderr.String(), "-"+f) {
			t.Errorf("--help does not document --%s", f)
		}
	}
	for _, v := range []string{"VPNFACADE_LISTEN", "VPNFACADE_REDIS_URL", "VPNFACADE_REGIONS", "VPNFACADE_ASSUME_ROLES", "VPNFACADE_REFRESH_INTERVAL", "VPNFACADE_DEMO", "VPNFACADE_DEMO_COUNT", "VPNFACADE_ACCESS_FILE", "VPNFACADE_TLS_CLIENT_CA", "VPNFACADE_METRICS_LISTEN"} {
		if !strings.Contains(stderr.String(), v) {
			t.Errorf("--help does not name %s", v)
		}
	}
}
