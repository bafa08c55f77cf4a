package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/vpnfacade/vpnfacade"
	"github.com/vpnfacade/vpnfacade/upstream"
)

// settings is everything the command line and the environment say. AWS
// settings (credentials, region, endpoint URLs, retry mode) come only from
// the standard AWS environment and config files.
type settings struct {
	listen          string
	redisURL        string
	redisSentinel   string
	redisCAFile     string
	redisCertFile   string
	redisKeyFile    string
	namespace       string
	regions         []string
	assumeRoles     []string
	accountID       string
	refreshInterval time.Duration
	maxStaleness    time.Duration
	leaseTTL        time.Duration
	refreshNowMin   time.Duration
	allowedOrigins  []string
	tlsCert         string
	tlsKey          string
	demo            bool
	demoCount       int
	logFormat       string
	pprofListen     string
	readTimeout     time.Duration
	writeTimeout    time.Duration
	shutdownGrace   time.Duration
	maxLists        int
	listShare       float64 // of maxLists, per client address; 1: no bound
	listRate        float64 // per client address; 0: no limit
	maxConnsPerAddr int     // 0: no limit
	accessFile      string
	tlsClientCA     string
	metricsListen   string
	watch           watchSettings
}

// watchSettings are the WatchClientVpnEndpoints flags.
type watchSettings struct {
	heartbeat     time.Duration
	retention     int
	retentionAge  time.Duration
	queue         int
	maxStreams    int
	maxPerAddress int
}

// parseConfig reads flags from args, each falling back to its environment
// variable (getenv) and then to its default. An error about a value names
// where the value came from: the flag, or the environment variable.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (*settings, error) {
	c := &settings{}
	fs := flag.NewFlagSet("vpnfacade", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `vpnfacade serves a cached copy of every AWS Client VPN endpoint over
Connect, gRPC, gRPC-Web and the EC2 Query API.

Usage: vpnfacade [flags]
       vpnfacade access new-token | new-access-key   (new credentials for --access-file)

Each flag falls back to the environment variable in brackets. AWS settings
(credentials, AWS_REGION, AWS_ENDPOINT_URL_EC2, retry mode) come from the
standard AWS environment and config files.

Flags:
`)
		fs.PrintDefaults()
	}
	// envOf maps each flag to its environment variable. Flags are
	// registered with their built-in defaults; after parsing, a flag not
	// given on the command line takes its variable's value through
	// fs.Set, so that a bad value is reported under the variable's name.
	envOf := map[string]string{}
	var regions, roles, origins string
	str := func(p *string, name, env, def, usage string) {
		envOf[name] = env
		fs.StringVar(p, name, def, usage+" ["+env+"]")
	}
	str(&c.listen, "listen", "VPNFACADE_LISTEN", ":8080", "address to serve HTTP/1.1 and h2c on")
	str(&c.redisURL, "redis-url", "VPNFACADE_REDIS_URL", "", "Redis URL (redis:// or rediss://; several comma-separated addresses for Redis Cluster or sentinels); empty keeps the cache in this process")
	str(&c.redisCAFile, "redis-ca-file", "VPNFACADE_REDIS_CA_FILE", "", "PEM file of the CAs that sign Redis's certificate, for a rediss:// URL (default: the system's)")
	str(&c.redisCertFile, "redis-cert-file", "VPNFACADE_REDIS_CERT_FILE", "", "client certificate (PEM) presented to Redis over rediss://, for tls-auth-clients; with --redis-key-file")
	str(&c.redisKeyFile, "redis-key-file", "VPNFACADE_REDIS_KEY_FILE", "", "private key (PEM) of --redis-cert-file")
	str(&c.redisSentinel, "redis-sentinel-master", "VPNFACADE_REDIS_SENTINEL_MASTER", "", "Sentinel master name; --redis-url then lists the sentinels")
	str(&c.namespace, "namespace", "VPNFACADE_NAMESPACE", "default", "key namespace in Redis; replicas sharing one cache use the same")
	str(&regions, "regions", "VPNFACADE_REGIONS", "", "comma-separated AWS regions to read (default: the AWS config's region)")
	str(&roles, "assume-roles", "VPNFACADE_ASSUME_ROLES", "", "comma-separated IAM role ARNs, one per further account to read")
	str(&c.accountID, "account-id", "VPNFACADE_ACCOUNT_ID", "", "account id of the default credentials (default: asked of STS GetCallerIdentity)")
	str(&origins, "allowed-origins", "VPNFACADE_ALLOWED_ORIGINS", "", "comma-separated browser origins allowed by CORS (* for any); empty disables CORS")
	str(&c.tlsCert, "tls-cert", "VPNFACADE_TLS_CERT", "", "TLS certificate file (serves HTTPS when given with --tls-key)")
	str(&c.tlsKey, "tls-key", "VPNFACADE_TLS_KEY", "", "TLS private key file")
	str(&c.accessFile, "access-file", "VPNFACADE_ACCESS_FILE", "", "access file (YAML): principals, their credentials and the accounts and regions each may read; reloaded on change and on SIGHUP. Empty: the service is open to anyone who can reach it")
	str(&c.tlsClientCA, "tls-client-ca", "VPNFACADE_TLS_CLIENT_CA", "", "PEM file of the CAs whose client certificates are accepted (mTLS); with --access-file a certificate's identity picks the principal, without it a verified certificate is required and reads everything")
	str(&c.metricsListen, "metrics-listen", "VPNFACADE_METRICS_LISTEN", "", "address to serve /metrics and /debug/pprof/ on, apart from the API (e.g. 127.0.0.1:9090); empty: /metrics is served with the API")
	str(&c.pprofListen, "pprof-listen", "VPNFACADE_PPROF_LISTEN", "", "address to serve Go's net/http/pprof profiles on, apart from the API (e.g. 127.0.0.1:6060); empty: off")
	str(&c.logFormat, "log-format", "VPNFACADE_LOG_FORMAT", "auto", "log format: json, text, or auto (text on a terminal, else json)")
	var refresh, staleness, lease, readTimeout, writeTimeout, grace, maxLists string
	str(&readTimeout, "read-timeout", "VPNFACADE_READ_TIMEOUT", "10s", "a unary request's body must arrive within this (streams are not cut)")
	str(&writeTimeout, "write-timeout", "VPNFACADE_WRITE_TIMEOUT", "30s", "a unary response must be taken by the client within this, from the end of its request")
	str(&grace, "shutdown-grace", "VPNFACADE_SHUTDOWN_GRACE", "10s", "on SIGTERM, in-flight requests may finish within this; connections still busy then are closed")
	str(&maxLists, "max-concurrent-lists", "VPNFACADE_MAX_CONCURRENT_LISTS", "0", "expensive calls (List, EC2) worked on at once; more wait 100ms, then get Unavailable / RequestLimitExceeded with a retry hint (0: 4 per CPU)")
	var listShare, listRate, maxConns string
	str(&listShare, "list-share-per-address", "VPNFACADE_LIST_SHARE_PER_ADDRESS", "0.5", "share of --max-concurrent-lists one client IP address may hold at once (rounded down, at least 1), so that other clients always find a slot; beyond: Unavailable / RequestLimitExceeded with a retry hint, as over --max-concurrent-lists (1: no share)")
	str(&listRate, "list-rate-per-address", "VPNFACADE_LIST_RATE_PER_ADDRESS", "100", "expensive calls (List, EC2) one client IP address may make per second, checked before the body is read (bursts of 2 s; a call counts 1, plus 1 per 16 KiB of body); beyond: ResourceExhausted / RequestLimitExceeded with a retry hint, after a wait of up to 1 s (0: no limit)")
	str(&maxConns, "max-connections-per-address", "VPNFACADE_MAX_CONNECTIONS_PER_ADDRESS", "100", "connections one client IP address may hold open; more are closed as soon as accepted, before TLS or HTTP (0: no limit)")
	var heartbeat, retentionAge string
	str(&retentionAge, "watch-retention-age", "VPNFACADE_WATCH_RETENTION_AGE", "1h", "how long the change log keeps a version: a watcher resuming from a version published longer ago gets a fresh initial state (reset)")
	str(&heartbeat, "watch-heartbeat", "VPNFACADE_WATCH_HEARTBEAT", "30s", "how often an idle watch stream gets a heartbeat carrying the current version and when it was last refreshed")
	var retention, queue, maxStreams, maxPerAddr string
	str(&retention, "watch-retention", "VPNFACADE_WATCH_RETENTION", "1000", "versions the change log keeps: a watcher resuming from an older version gets a fresh initial state (reset)")
	str(&queue, "watch-queue", "VPNFACADE_WATCH_QUEUE", "64", "messages that may wait for one watcher; a watcher further behind is reset")
	str(&maxStreams, "max-watchers", "VPNFACADE_MAX_WATCHERS", "10000", "watch streams this process serves at once; beyond: ResourceExhausted")
	str(&maxPerAddr, "max-watchers-per-address", "VPNFACADE_MAX_WATCHERS_PER_ADDRESS", "100", "watch streams one client IP address may hold open at once; beyond: ResourceExhausted")
	str(&refresh, "refresh-interval", "VPNFACADE_REFRESH_INTERVAL", "60s", "time between refreshes (jittered)")
	str(&staleness, "max-staleness", "VPNFACADE_MAX_STALENESS", "1h", "refuse reads (Unavailable) when the snapshot is older than this; 0 serves any age")
	str(&lease, "lease-ttl", "VPNFACADE_LEASE_TTL", "15s", "refresher leader lease duration in Redis; a dead leader is replaced within it")
	var refreshNowMin string
	str(&refreshNowMin, "refresh-now-min-interval", "VPNFACADE_REFRESH_NOW_MIN_INTERVAL", "10s", "at most one refresh forced by the admin service's RefreshNow per this interval, across the replicas; calls within it get ResourceExhausted with a retry hint")
	envOf["demo"] = "VPNFACADE_DEMO"
	fs.BoolVar(&c.demo, "demo", false, "run the built-in EC2 emulator with generated endpoints and read from it [VPNFACADE_DEMO]")
	envOf["demo-count"] = "VPNFACADE_DEMO_COUNT"
	fs.IntVar(&c.demoCount, "demo-count", 500, "endpoints the --demo emulator generates [VPNFACADE_DEMO_COUNT]")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q; every setting is a flag", fs.Args())
	}
	// source names where each flag's value came from, for error messages:
	// "--flag", or "VPNFACADE_X (--flag)" when the environment set it.
	source := map[string]string{}
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		env, ok := envOf[f.Name]
		if !ok {
			return
		}
		source[f.Name] = "--" + f.Name
		v := getenv(env)
		if onCommandLine[f.Name] || v == "" {
			return
		}
		source[f.Name] = env + " (--" + f.Name + ")"
		if err := fs.Set(f.Name, v); err != nil && envErr == nil {
			want := "is not valid"
			switch f.Value.(type) {
			case interface{ IsBoolFlag() bool }:
				want = "is not one of true, false, 1, 0"
			case flag.Getter:
				if _, isInt := f.Value.(flag.Getter).Get().(int); isInt {
					want = "is not a whole number"
				}
			}
			envErr = fmt.Errorf("%s: %q %s", source[f.Name], truncate(v), want)
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	var err error
	for _, d := range []struct {
		name string
		s    string
		p    *time.Duration
		zero bool
	}{
		{"refresh-interval", refresh, &c.refreshInterval, false},
		{"max-staleness", staleness, &c.maxStaleness, true},
		{"lease-ttl", lease, &c.leaseTTL, false},
		{"refresh-now-min-interval", refreshNowMin, &c.refreshNowMin, false},
		{"read-timeout", readTimeout, &c.readTimeout, false},
		{"write-timeout", writeTimeout, &c.writeTimeout, false},
		{"shutdown-grace", grace, &c.shutdownGrace, false},
		{"watch-heartbeat", heartbeat, &c.watch.heartbeat, false},
		{"watch-retention-age", retentionAge, &c.watch.retentionAge, false},
	} {
		if *d.p, err = time.ParseDuration(d.s); err != nil || *d.p < 0 || (!d.zero && *d.p == 0) {
			return nil, fmt.Errorf("%s: %q is not a positive duration such as 30s or 5m", source[d.name], truncate(d.s))
		}
	}
	for _, n := range []struct {
		name string
		s    string
		p    *int
	}{
		{"watch-retention", retention, &c.watch.retention},
		{"watch-queue", queue, &c.watch.queue},
		{"max-watchers", maxStreams, &c.watch.maxStreams},
		{"max-watchers-per-address", maxPerAddr, &c.watch.maxPerAddress},
	} {
		if *n.p, err = strconv.Atoi(n.s); err != nil || *n.p < 1 {
			return nil, fmt.Errorf("%s: %q is not a positive integer", source[n.name], truncate(n.s))
		}
	}
	c.regions, c.assumeRoles, c.allowedOrigins = splitList(regions), splitList(roles), splitList(origins)
	if err := checkAWSSettings(c); err != nil {
		return nil, err
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return nil, fmt.Errorf("%s and %s go together", source["tls-cert"], source["tls-key"])
	}
	if (c.redisCertFile == "") != (c.redisKeyFile == "") {
		return nil, fmt.Errorf("%s and %s go together", source["redis-cert-file"], source["redis-key-file"])
	}
	if c.redisCAFile != "" || c.redisCertFile != "" {
		flagName := map[bool]string{true: "redis-ca-file", false: "redis-cert-file"}[c.redisCAFile != ""]
		if !strings.HasPrefix(strings.TrimSpace(c.redisURL), "rediss://") {
			return nil, fmt.Errorf("%s needs a rediss:// %s (TLS)", source[flagName], source["redis-url"])
		}
	}
	if c.tlsClientCA != "" && c.tlsCert == "" {
		return nil, errors.New("--tls-client-ca needs --tls-cert and --tls-key: client certificates travel over TLS")
	}
	switch c.logFormat {
	case "auto", "json", "text":
	default:
		return nil, fmt.Errorf("%s: %q is not one of auto, json, text", source["log-format"], truncate(c.logFormat))
	}
	if c.maxLists, err = strconv.Atoi(maxLists); err != nil || c.maxLists < 0 {
		return nil, fmt.Errorf("%s: %q is not a whole number ≥ 0", source["max-concurrent-lists"], truncate(maxLists))
	}
	if c.listShare, err = strconv.ParseFloat(listShare, 64); err != nil || !(c.listShare > 0 && c.listShare <= 1) {
		return nil, fmt.Errorf("%s: %q is not a number above 0 and at most 1", source["list-share-per-address"], truncate(listShare))
	}
	if c.listRate, err = strconv.ParseFloat(listRate, 64); err != nil || c.listRate < 0 || math.IsInf(c.listRate, 0) || math.IsNaN(c.listRate) {
		return nil, fmt.Errorf("%s: %q is not a number ≥ 0", source["list-rate-per-address"], truncate(listRate))
	}
	if c.maxConnsPerAddr, err = strconv.Atoi(maxConns); err != nil || c.maxConnsPerAddr < 0 {
		return nil, fmt.Errorf("%s: %q is not a whole number ≥ 0", source["max-connections-per-address"], truncate(maxConns))
	}
	if c.demoCount < 0 {
		return nil, fmt.Errorf("%s: %d is negative", source["demo-count"], c.demoCount)
	}
	return c, nil
}

// maxEcho is how much of a bad value an error message repeats.
const maxEcho = 64

// truncate shortens s to maxEcho bytes for an error message.
func truncate(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	return s[:maxEcho] + "…"
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// checkAWSSettings rejects the AWS settings that are wrong for sure, before
// anything starts, naming the flag and its environment variable: region
// names no region can have, role ARNs that are not IAM roles', an account id
// that is not 12 digits. Nothing here calls AWS: whether the regions, roles
// and account exist is learned by the refresher.
func checkAWSSettings(c *settings) error {
	named := func(flag, env string, err error) error {
		return fmt.Errorf("--%s [%s]: %s", flag, env, vpnfacade.ErrorMessageOf(err))
	}
	for _, r := range c.regions {
		if err := upstream.CheckRegion(r); err != nil {
			return named("regions", "VPNFACADE_REGIONS", err)
		}
	}
	for _, a := range c.assumeRoles {
		if _, err := upstream.ParseRoleARN(a); err != nil {
			return named("assume-roles", "VPNFACADE_ASSUME_ROLES", err)
		}
	}
	if c.accountID != "" {
		if err := upstream.CheckAccountID(c.accountID); err != nil {
			return named("account-id", "VPNFACADE_ACCOUNT_ID", err)
		}
	}
	return nil
}
