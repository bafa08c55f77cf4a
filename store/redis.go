package store

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/singleflight"

	"github.com/vpnfacade/vpnfacade"
	"github.com/vpnfacade/vpnfacade/snapshot"
	"github.com/vpnfacade/vpnfacade/tracing"
)

// Defaults of RedisOptions.
const (
	// DefaultRedisNamespace is the namespace used when RedisOptions.Namespace
	// is empty.
	DefaultRedisNamespace = "default"
	// DefaultRedisGrace is how long a superseded version stays readable.
	DefaultRedisGrace = 10 * time.Minute
	// DefaultRedisPollInterval is how often the mirror polls the current
	// pointer when no announcement arrives.
	DefaultRedisPollInterval = 2 * time.Second
	// DefaultRedisRetain is how many superseded versions stay readable at
	// most.
	DefaultRedisRetain = 2
	// DefaultRedisCommandTimeout bounds one Redis command (dial, read, write).
	DefaultRedisCommandTimeout = 3 * time.Second
)

// RedisOptions configures NewRedis.
type RedisOptions struct {
	// URL locates Redis: "redis://[user:password@]host:port[/db]" or
	// "rediss://…" for TLS. Several comma-separated addresses
	// ("redis://a:6379,b:6379,c:6379") select Redis Cluster, or the
	// sentinels when SentinelMaster is set; credentials, database and TLS
	// come from the first.
	URL string
	// TLS, when set, gives the trusted CAs (RootCAs) and the client
	// certificate (Certificates) for a rediss:// URL; the URL still decides
	// that TLS is used and the name the server's certificate must carry.
	// Nil: the system's CAs and no client certificate. Setting it with a
	// redis:// URL is an error, not a silent plain-text connection.
	TLS *tls.Config
	// SentinelMaster is the master name to ask the sentinels in URL for;
	// empty when URL names the data nodes themselves.
	SentinelMaster string
	// Namespace separates data sets sharing one Redis; every key of one
	// namespace carries the hash tag {Namespace}. Default "default".
	Namespace string
	// Grace is how long a superseded version stays readable after the
	// current pointer moves on (page tokens and slow readers may still use
	// it). Default DefaultRedisGrace.
	Grace time.Duration
	// Retain is how many superseded versions stay readable at most, each
	// for Grace at most: Redis holds at most Retain+1 copies of the data,
	// however often versions are published. Default DefaultRedisRetain.
	Retain int
	// PollInterval is how often the mirror reads the current pointer, as a
	// backstop for missed announcements. Default DefaultRedisPollInterval.
	PollInterval time.Duration
	// CommandTimeout bounds each Redis command; it is also how long a read
	// takes to notice that Redis stopped answering. Default
	// DefaultRedisCommandTimeout.
	CommandTimeout time.Duration
	// Logger receives the mirror's reload failures and recoveries; nil
	// discards them.
	Logger *slog.Logger
	// ChangeLogLength is how many versions the change log (the stream
	// watchers resume from) keeps. Default DefaultChangeLogLength.
	ChangeLogLength int
	// TracerProvider receives a client span for each Redis command (or
	// pipeline) made within a span, such as a refresh's publish; commands
	// made outside any span (the mirror's polls, the lease's renewals) are
	// not traced. Spans name the command, never its arguments. Nil means
	// no spans.
	TracerProvider trace.TracerProvider
	// ChangeLogAge is how long the change log keeps a version's change,
	// from its publish time. Default DefaultChangeLogAge.
	ChangeLogAge time.Duration
	// Now is the clock publish times are taken from and the change log's
	// age is measured with. Default time.Now.
	Now func() time.Time
}

// Redis is a Store kept in Redis, shared by every replica and surviving
// restarts, with an in-process mirror of the current snapshot.
//
// Keys of namespace N (all in one cluster slot thanks to the hash tag):
//
//	vpnfacade:{N}:version           counter the next version is taken from
//	vpnfacade:{N}:current           the current version, flipped by one script
//	vpnfacade:{N}:epoch             the highest writer fencing epoch accepted
//	vpnfacade:{N}:lease             the refresher lease holder's token, with a TTL
//	vpnfacade:{N}:snapshot:<v>      hash: meta fields and encoded endpoint chunks
//	vpnfacade:{N}:announce          pub/sub channel carrying each new version
//	vpnfacade:{N}:confirmed         the last confirmation of unchanged data (see Confirm)
//	vpnfacade:{N}:retained          list of superseded versions still readable, oldest first
//	vpnfacade:{N}:changes           stream: the change each version made (see Changes)
//
// Reads are answered from the mirror (see Current); Publish writes through
// to Redis and then updates the mirror of the publishing process at once.
type Redis struct {
	client  redis.UniversalClient
	keys    redisKeys
	grace   time.Duration
	retain  int
	poll    time.Duration
	timeout time.Duration // bounds one command (RedisOptions.CommandTimeout)
	logLen  int           // RedisOptions.ChangeLogLength
	logAge  time.Duration // RedisOptions.ChangeLogAge
	now     func() time.Time
	log     *slog.Logger

	mirror  atomic.Pointer[snapshot.Snapshot]
	applied atomic.Pointer[string] // the last confirmation the mirror took (see Confirm)
	stale   atomic.Bool            // the last poll or reload failed
	// publishFailed: this process's last publish failed on Redis and no
	// newer snapshot has reached the mirror since.
	publishFailed atomic.Bool
	pointerGone   atomic.Bool // the current pointer was found missing (flushed)
	state         syncState   // when and why the last sync failed
	loads         singleflight.Group
	publishMu     sync.Mutex    // serialises this process's publishes
	flipping      atomic.Uint64 // the version this process is flipping to; 0: none
	published     broadcast     // fired when the mirror moves
	announced     broadcast     // fired when a newer version is announced, and when the mirror moves

	ctx       context.Context // ends on Close; loads run under it
	cancel    context.CancelFunc
	done      chan struct{} // closed when the mirror goroutine returns
	closeOnce sync.Once
	closeErr  error
}

// redisKeys are the key and channel names of one namespace.
type redisKeys struct {
	prefix    string // "vpnfacade:{N}:"
	version   string
	current   string
	epoch     string
	announce  string
	confirmed string
	retained  string
	changes   string
}

func newRedisKeys(namespace string) redisKeys {
	p := "vpnfacade:{" + namespace + "}:"
	return redisKeys{
		prefix:    p,
		version:   p + "version",
		current:   p + "current",
		epoch:     p + "epoch",
		announce:  p + "announce",
		confirmed: p + "confirmed",
		retained:  p + "retained",
		changes:   p + "changes",
	}
}

func (k redisKeys) snapshot(version uint64) string {
	return fmt.Sprintf("%ssnapshot:%d", k.prefix, version)
}

// NewRedis connects to Redis and starts the mirror, which loads the current
// snapshot (if any) in the background and then follows announcements and
// polls. It fails only on invalid options: an unreachable Redis is reported
// by Current (EUNAVAILABLE until a snapshot can be loaded) and by Publish.
// ctx carries values for the mirror; its cancellation does not stop it,
// Close does.
func NewRedis(ctx context.Context, opts RedisOptions) (*Redis, error) {
	uo, err := universalOptions(opts)
	if err != nil {
		return nil, err
	}
	if strings.ContainsAny(opts.Namespace, "{}") {
		return nil, fmt.Errorf("store: redis namespace %q must not contain braces: they delimit the cluster hash tag", opts.Namespace)
	}
	ns := cmp.Or(opts.Namespace, DefaultRedisNamespace)
	for name, d := range map[string]time.Duration{"grace": opts.Grace, "poll interval": opts.PollInterval, "command timeout": opts.CommandTimeout, "change log age": opts.ChangeLogAge} {
		if d < 0 {
			return nil, fmt.Errorf("store: redis %s must not be negative, got %s", name, d)
		}
	}
	if opts.Retain < 0 {
		return nil, fmt.Errorf("store: redis retain must not be negative, got %d", opts.Retain)
	}
	client := redis.NewUniversalClient(uo)
	if opts.TracerProvider != nil {
		err := redisotel.InstrumentTracing(client,
			redisotel.WithTracerProvider(tracing.ChildrenOnly(opts.TracerProvider)),
			// Arguments are snapshots and secrets (AUTH): never in a span.
			redisotel.WithDBStatement(false),
			redisotel.WithCallerEnabled(false))
		if err != nil {
			return nil, errors.Join(fmt.Errorf("store: tracing Redis commands: %w", err), client.Close())
		}
	}
	r := &Redis{
		client:  client,
		keys:    newRedisKeys(ns),
		grace:   cmp.Or(opts.Grace, DefaultRedisGrace),
		retain:  cmp.Or(opts.Retain, DefaultRedisRetain),
		poll:    cmp.Or(opts.PollInterval, DefaultRedisPollInterval),
		timeout: cmp.Or(opts.CommandTimeout, DefaultRedisCommandTimeout),
		logLen:  cmp.Or(max(opts.ChangeLogLength, 0), DefaultChangeLogLength),
		logAge:  cmp.Or(opts.ChangeLogAge, DefaultChangeLogAge),
		now:     opts.Now,
		log:     opts.Logger,
		done:    make(chan struct{}),
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	r.log = r.log.With("namespace", ns)
	r.ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	go r.follow()
	return r, nil
}

// universalOptions turns RedisOptions into go-redis options. Its errors
// never show the URL's credentials: the URL is redacted, and so is any
// message of a parser that quotes it.
func universalOptions(opts RedisOptions) (*redis.UniversalOptions, error) {
	uo, err := parseRedisURL(opts)
	if err != nil {
		return nil, redactError(err, urlSecrets(opts.URL))
	}
	return uo, nil
}

func parseRedisURL(opts RedisOptions) (*redis.UniversalOptions, error) {
	if strings.TrimSpace(opts.URL) == "" {
		return nil, errors.New("store: redis URL is empty; want redis://host:port or rediss://host:port")
	}
	parts := strings.Split(opts.URL, ",")
	first, err := redis.ParseURL(strings.TrimSpace(parts[0]))
	if err != nil {
		return nil, fmt.Errorf("store: redis URL %q: %w", redactURL(parts[0]), err)
	}
	if first.Network != "tcp" {
		return nil, fmt.Errorf("store: redis URL %q: want scheme redis:// or rediss://", redactURL(parts[0]))
	}
	if opts.TLS != nil {
		if first.TLSConfig == nil {
			return nil, fmt.Errorf("store: redis URL %q is plain text (redis://) but a CA or client certificate is given; use rediss:// for TLS", redactURL(parts[0]))
		}
		cfg := opts.TLS.Clone()
		cfg.ServerName = first.TLSConfig.ServerName
		cfg.InsecureSkipVerify = first.TLSConfig.InsecureSkipVerify // rediss://…?skip_verify=true
		cfg.MinVersion = max(cfg.MinVersion, first.TLSConfig.MinVersion, tls.VersionTLS12)
		first.TLSConfig = cfg
	}
	timeout := cmp.Or(opts.CommandTimeout, DefaultRedisCommandTimeout)
	uo := &redis.UniversalOptions{
		Addrs:        []string{first.Addr},
		Username:     first.Username,
		Password:     first.Password,
		DB:           first.DB,
		TLSConfig:    first.TLSConfig,
		MasterName:   opts.SentinelMaster,
		DialTimeout:  timeout,
		ReadTimeout:  timeout,
		WriteTimeout: timeout,
		// Commands end at their context's deadline too: the writer lease
		// must not wait past its validity on a stuck call.
		ContextTimeoutEnabled: true,
		// Tuning given as URL query parameters (pool_size=…).
		ClientName:   first.ClientName,
		Protocol:     first.Protocol,
		MaxRetries:   first.MaxRetries,
		PoolSize:     first.PoolSize,
		MinIdleConns: first.MinIdleConns,
		MaxIdleConns: first.MaxIdleConns,
	}
	for _, p := range parts[1:] {
		p = strings.TrimSpace(p)
		addr := p
		if strings.Contains(p, "://") {
			o, err := redis.ParseURL(p)
			if err != nil {
				return nil, fmt.Errorf("store: redis URL %q: %w", redactURL(p), err)
			}
			addr = o.Addr
		} else if _, _, err := net.SplitHostPort(p); err != nil || strings.Contains(p, "@") {
			return nil, fmt.Errorf("store: redis address %q: want host:port (credentials go in the first URL only)", redactURL("//" + p)[2:])
		}
		uo.Addrs = append(uo.Addrs, addr)
	}
	for _, a := range uo.Addrs {
		if _, port, err := net.SplitHostPort(a); err == nil {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("store: redis port %.16q is not a port number (1-65535)", port)
			}
		}
	}
	if len(uo.Addrs) > 1 && uo.TLSConfig != nil {
		// Verify each node against its own host name, not the first's.
		uo.TLSConfig.ServerName = ""
	}
	if len(uo.Addrs) > 1 && opts.SentinelMaster == "" && uo.DB != 0 {
		return nil, fmt.Errorf("store: redis URL selects database %d, which Redis Cluster does not have", uo.DB)
	}
	return uo, nil
}

// redactURL hides the credentials of a URL (or of "//user:pass@host")
// meant for a message.
func redactURL(s string) string {
	s = strings.TrimSpace(s)
	scheme, rest, ok := strings.Cut(s, "//")
	if !ok {
		return s
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		return scheme + "//" + "REDACTED@" + rest[at+1:]
	}
	return s
}

// urlSecrets returns the credentials written in the comma-separated URLs
// of s (user info and password, raw and escaped as a parser may quote
// them), longest first.
func urlSecrets(s string) []string {
	var secrets []string
	for _, p := range strings.Split(s, ",") {
		_, rest, ok := strings.Cut(p, "//")
		if !ok {
			rest = p
		}
		at := strings.LastIndex(rest, "@")
		if at < 0 {
			continue
		}
		userinfo := rest[:at]
		for _, v := range []string{userinfo, afterColon(userinfo)} {
			if v == "" {
				continue
			}
			quoted := strconv.Quote(v)
			secrets = append(secrets, v, quoted[1:len(quoted)-1], url.QueryEscape(v), url.PathEscape(v))
		}
	}
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(secrets)
}

func afterColon(s string) string {
	_, after, _ := strings.Cut(s, ":")
	return after
}

// redactError returns err with every secret in its message replaced by
// REDACTED (err itself when it holds none). The result does not wrap err:
// its chain would still hold the secret.
func redactError(err error, secrets []string) error {
	msg := err.Error()
	redacted := msg
	for _, s := range secrets {
		redacted = strings.ReplaceAll(redacted, s, "REDACTED")
	}
	if redacted == msg {
		return err
	}
	return errors.New(redacted)
}

// Client returns the Redis client the store uses, for collaborators that
// keep their own keys beside the snapshots (the writer lease). They must
// not close it.
func (r *Redis) Client() redis.UniversalClient { return r.client }

// EpochKey returns the key holding the writer fencing epoch: Publish refuses
// a publication whose Epoch is below it. The writer lease increments it when
// a writer takes over. It shares the namespace's hash tag, so one script may
// touch it together with the lease.
func (r *Redis) EpochKey() string { return r.keys.epoch }

// Key returns the name of a key of this store's namespace, carrying its hash
// tag: Key("lease") is "vpnfacade:{<namespace>}:lease".
func (r *Redis) Key(name string) string { return r.keys.prefix + name }

// Close stops the mirror and closes the Redis client. Reads after Close
// keep answering from the mirror; publishes fail.
func (r *Redis) Close() error {
	r.closeOnce.Do(func() {
		r.cancel()
		<-r.done
		if err := r.client.Close(); err != nil {
			r.closeErr = fmt.Errorf("store: close redis client: %w", err)
		}
	})
	return r.closeErr
}

// errRedis wraps a Redis failure: callers and transports see code and a
// client-safe message, logs see the cause.
func errRedis(code vpnfacade.ErrorCode, msg string, cause error) error {
	return fmt.Errorf("%w: %w", vpnfacade.Errorf(code, "", "%s", msg), cause)
}
