// Package upstream reads AWS Client VPN endpoints from EC2 with
// aws-sdk-go-v2 and maps them to the API contract's types. It is the only
// package of the service that knows the SDK.
//
// A Source reads a set of partitions, one per (account, region). Credentials,
// regions' endpoints and the like come from the SDK's standard configuration
// chain (environment, shared config and credentials files, AWS_ENDPOINT_URL
// and AWS_ENDPOINT_URL_EC2, IMDS); accounts beyond the default credentials'
// are reached by assuming a role in each. Every call goes through the SDK's
// retryer, and every attempt is counted per partition (calls, throttles,
// errors, pages), for logs and for Prometheus.
package upstream

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/logging"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/vpnfacade/vpnfacade"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/tracing"
)

// scope is the instrumentation scope of the Source's spans.
const scope = "github.com/vpnfacade/vpnfacade/upstream"

// DefaultPageSize is the MaxResults of every DescribeClientVpnEndpoints
// call unless Options.PageSize says otherwise: EC2's maximum, so that a
// refresh costs as few calls as possible.
const DefaultPageSize = 1000

// Options say which partitions a Source reads and how it calls EC2.
type Options struct {
	// Regions to read, e.g. "eu-west-1". Empty means the AWS configuration's
	// region (AWS_REGION, the profile's region); one is required.
	Regions []string
	// RoleARNs are IAM roles, one per further account, assumed with the
	// default credentials (arn:aws:iam::<account>:role/<name>). Each role's
	// account is read in every region.
	RoleARNs []string
	// RoleSessionName names the sessions of assumed roles (CloudTrail shows
	// it); empty means "vpnfacade".
	RoleSessionName string
	// AccountID is the account of the default credentials (12 digits). When
	// empty and that account is read, Prepare asks STS GetCallerIdentity
	// for it.
	AccountID string
	// SkipDefaultAccount leaves the default credentials' own account out:
	// only the roles' accounts are read. It requires at least one role.
	SkipDefaultAccount bool

	// RetryMode is aws.RetryModeStandard or aws.RetryModeAdaptive (which also
	// rate-limits the client after throttling). Empty means the mode of the
	// SDK's configuration (AWS_RETRY_MODE, the profile's retry_mode), else
	// standard.
	RetryMode aws.RetryMode
	// MaxAttempts is the most attempts per call, the first included. 0 means
	// the SDK's configuration (AWS_MAX_ATTEMPTS, the profile's max_attempts),
	// else the SDK's default (3).
	MaxAttempts int
	// MaxBackoff caps the delay between attempts; 0 means the SDK's default
	// (20 s).
	MaxBackoff time.Duration
	// PageSize is MaxResults per call, 5 to 1000; 0 means DefaultPageSize.
	PageSize int32

	// BaseEndpoint, when set, sends every EC2 and STS call to this URL
	// instead of the endpoint the SDK resolves (for tests and the demo; in
	// production use the SDK's AWS_ENDPOINT_URL_EC2 if anything).
	BaseEndpoint string
	// LoadOptions are passed to config.LoadDefaultConfig after the
	// Source's own, e.g. static credentials or an HTTP client for tests.
	LoadOptions []func(*config.LoadOptions) error

	// Logger receives throttling and paging events; nil discards them.
	Logger *slog.Logger
	// Registerer receives every partition's Stats as counters
	// (vpnfacade_upstream_{calls,throttles,errors,pages}_total, by account
	// and region); nil means no metrics. Pass the service's own registry,
	// not the global one.
	Registerer prometheus.Registerer
	// TracerProvider receives a client span for each page read
	// (EC2/DescribeClientVpnEndpoints, retries included), a child of the
	// caller's span; nil means no spans.
	TracerProvider trace.TracerProvider
}

// Source reads Client VPN endpoints from every configured partition. It is
// safe for concurrent use.
//
// New makes no call to AWS: the default credentials' account, when
// Options.AccountID does not name it, is learned by Prepare, and roles are
// assumed on their partitions' first reads. So a process that only serves
// the cache never calls AWS, and one that reads it calls AWS only once it
// reads.
type Source struct {
	base     aws.Config
	regions  []string
	pageSize int32
	log      *slog.Logger
	tracer   trace.Tracer
	sts      *sts.Client

	// parts is the current set of partitions; Prepare replaces it once, when
	// it learns the default credentials' account.
	parts atomic.Pointer[partitionSet]
	// prepareMu serializes Prepare's calls to STS.
	prepareMu sync.Mutex
	// roles are the role accounts' partitions, in configuration order; the
	// default account's go before them once known.
	roles []*Partition
	// pending is true until the default credentials' account is known (it
	// is never set when that account is configured or skipped).
	pending atomic.Bool
}

// partitionSet is an immutable list of partitions with its index.
type partitionSet struct {
	list  []*Partition
	byKey map[vpnfacade.PartitionKey]*Partition
}

// regionPattern is what a region name looks like (us-east-1, eu-isoe-west-1,
// us-gov-west-1, cn-north-1). It only rejects obvious typos.
var regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z0-9]+)+-[0-9]+$`)

// accountPattern is a 12-digit AWS account id.
var accountPattern = regexp.MustCompile(`^[0-9]{12}$`)

// New loads the SDK's default configuration, checks cfg and builds one EC2
// client per partition. It makes no network call: loading the SDK's
// configuration reads only the environment and the shared files (it would
// ask the instance metadata service for the region only under
// AWS_DEFAULTS_MODE=auto, and failing to reach it does not fail the load),
// credentials are retrieved on the first signed call, the default
// credentials' account is learned by Prepare, and roles are assumed on each
// partition's first read.
func New(ctx context.Context, cfg Options) (*Source, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base, err := config.LoadDefaultConfig(ctx, cfg.LoadOptions...)
	if err != nil {
		return nil, fmt.Errorf("upstream: load AWS configuration: %w", err)
	}
	if len(cfg.Regions) == 0 && base.Region != "" {
		cfg.Regions = []string{base.Region}
	}
	roles, err := validate(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.BaseEndpoint != "" {
		base.BaseEndpoint = aws.String(cfg.BaseEndpoint)
	}
	if base.Region == "" {
		// STS needs a region; EC2 clients set their own.
		base.Region = cfg.Regions[0]
	}
	// The SDK's own warnings (e.g. a response body it could not discard)
	// go to the service's logger instead of plain lines on stderr.
	base.Logger = sdkLogger{log}
	base.Retryer = retryer(cfg, base)
	base.RetryMode, base.RetryMaxAttempts = "", 0 // consumed by retryer
	base.APIOptions = append(base.APIOptions, WithoutRequestBodyWriteTo)
	s := &Source{
		base:     base,
		regions:  slices.Clone(cfg.Regions),
		pageSize: cmp.Or(cfg.PageSize, DefaultPageSize),
		log:      log,
		tracer:   tracing.Tracer(cfg.TracerProvider, scope),
		sts:      sts.NewFromConfig(base),
	}
	session := cmp.Or(cfg.RoleSessionName, "vpnfacade")
	for i, role := range roles {
		provider := stscreds.NewAssumeRoleProvider(s.sts, cfg.RoleARNs[i], func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = session
		})
		s.roles = append(s.roles, s.accountPartitions(role.AccountID, aws.NewCredentialsCache(provider))...)
	}
	var defaults []*Partition
	switch {
	case cfg.SkipDefaultAccount:
	case cfg.AccountID != "":
		defaults = s.accountPartitions(cfg.AccountID, base.Credentials)
	default:
		s.pending.Store(true)
	}
	set, err := newPartitionSet(defaults, s.roles)
	if err != nil {
		return nil, err
	}
	s.parts.Store(set)
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(collector{s}); err != nil {
			return nil, fmt.Errorf("upstream: register metrics: %w", err)
		}
	}
	return s, nil
}

// sdkLogger passes the SDK's log messages to slog: warnings as warnings,
// the rest (debug output, when enabled) at debug level.
type sdkLogger struct{ log *slog.Logger }

// Logf implements logging.Logger.
func (l sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	level := slog.LevelDebug
	if c == logging.Warn {
		level = slog.LevelWarn
	}
	l.log.Log(context.Background(), level, "AWS SDK: "+fmt.Sprintf(format, v...))
}

// accountPartitions returns one partition of account per region.
func (s *Source) accountPartitions(account string, creds aws.CredentialsProvider) []*Partition {
	out := make([]*Partition, len(s.regions))
	for i, region := range s.regions {
		out[i] = newPartition(s.base, account, region, creds, s.pageSize, s.log, s.tracer)
	}
	return out
}

// newPartitionSet indexes the default account's partitions followed by the
// roles'. It fails when an account comes twice.
func newPartitionSet(lists ...[]*Partition) (*partitionSet, error) {
	set := &partitionSet{byKey: map[vpnfacade.PartitionKey]*Partition{}}
	for _, l := range lists {
		for _, p := range l {
			key := vpnfacade.PartitionKey{AccountID: p.accountID, Region: p.region}
			if set.byKey[key] != nil {
				return nil, vpnfacade.Errorf(vpnfacade.EINVALID, "role_arns",
					"account %s is configured twice (the default credentials' account and a role, or two roles)", p.accountID)
			}
			set.list = append(set.list, p)
			set.byKey[key] = p
		}
	}
	return set, nil
}

// Prepare makes every partition known. When the default credentials'
// account is read and Options.AccountID did not name it, Prepare asks STS
// GetCallerIdentity for it (through the SDK's retryer) and adds that
// account's partitions, ahead of the roles'; once that succeeded, and in
// every other case, it returns nil at once. A failure is returned, and the
// next call asks again: the refresher calls Prepare before each refresh, so
// it is retried with the refresher's backoff, and only by the process that
// refreshes. It is safe for concurrent use.
func (s *Source) Prepare(ctx context.Context) error {
	if !s.pending.Load() {
		return nil
	}
	s.prepareMu.Lock()
	defer s.prepareMu.Unlock()
	if !s.pending.Load() {
		return nil
	}
	out, err := s.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return fmt.Errorf("upstream: find the default credentials' account with STS GetCallerIdentity, to read it in %s (configure the account id to skip this call): %w",
			strings.Join(s.regions, ", "), err)
	}
	account := aws.ToString(out.Account)
	if !accountPattern.MatchString(account) {
		return fmt.Errorf("upstream: STS GetCallerIdentity answered %.64q, not a 12-digit account id", account)
	}
	set, err := newPartitionSet(s.accountPartitions(account, s.base.Credentials), s.roles)
	if err != nil {
		return err
	}
	s.parts.Store(set)
	s.pending.Store(false)
	s.log.InfoContext(ctx, "found the default credentials' account", "account", account)
	return nil
}

// validate checks cfg and returns the parsed role ARNs.
func validate(cfg Options) ([]arn.ARN, error) {
	if len(cfg.Regions) == 0 {
		return nil, vpnfacade.Errorf(vpnfacade.EINVALID, "regions", "at least one region is required, e.g. eu-west-1; none was configured and the AWS configuration names none (AWS_REGION)")
	}
	seen := map[string]bool{}
	for _, r := range cfg.Regions {
		if err := CheckRegion(r); err != nil {
			return nil, err
		}
		if seen[r] {
			return nil, vpnfacade.Errorf(vpnfacade.EINVALID, "regions", "region %s is listed twice", r)
		}
		seen[r] = true
	}
	if cfg.AccountID != "" {
		if err := CheckAccountID(cfg.AccountID); err != nil {
			return nil, err
		}
	}
	if cfg.SkipDefaultAccount && len(cfg.RoleARNs) == 0 {
		return nil, vpnfacade.Errorf(vpnfacade.EINVALID, "role_arns", "at least one role is required when the default account is skipped")
	}
	roles := make([]arn.ARN, len(cfg.RoleARNs))
	for i, s := range cfg.RoleARNs {
		a, err := ParseRoleARN(s)
		if err != nil {
			return nil, err
		}
		roles[i] = a
	}
	switch cfg.RetryMode {
	case "", aws.RetryModeStandard, aws.RetryModeAdaptive:
	default:
		return nil, vpnfacade.Errorf(vpnfacade.EINVALID, "retry_mode", "%q is not a retry mode: use %q or %q",
			cfg.RetryMode, aws.RetryModeStandard, aws.RetryModeAdaptive)
	}
	if cfg.MaxAttempts < 0 {
		return nil, vpnfacade.Errorf(vpnfacade.EINVALID, "max_attempts", "%d is negative: use 1 or more, or 0 for the SDK's default", cfg.MaxAttempts)
	}
	if cfg.MaxBackoff < 0 {
		return nil, vpnfacade.Errorf(vpnfacade.EINVALID, "max_backoff", "%v is negative: use a positive duration, or 0 for the SDK's default", cfg.MaxBackoff)
	}
	if cfg.PageSize != 0 && (cfg.PageSize < 5 || cfg.PageSize > 1000) {
		return nil, vpnfacade.Errorf(vpnfacade.EINVALID, "page_size", "%d is out of range: use 5 to 1000, or 0 for %d", cfg.PageSize, DefaultPageSize)
	}
	return roles, nil
}

// CheckRegion returns an EINVALID error naming the field "regions" unless
// name is spelled like an AWS region (eu-west-1, us-gov-west-1,
// cn-north-1). It cannot tell whether the region exists or is enabled for
// the account; it only rejects what cannot be a region.
func CheckRegion(name string) error {
	if !regionPattern.MatchString(name) {
		return vpnfacade.Errorf(vpnfacade.EINVALID, "regions", "%.64q is not a region name like eu-west-1", name)
	}
	return nil
}

// CheckAccountID returns an EINVALID error naming the field "account_id"
// unless id is an AWS account id, 12 digits.
func CheckAccountID(id string) error {
	if !accountPattern.MatchString(id) {
		return vpnfacade.Errorf(vpnfacade.EINVALID, "account_id", "%.64q is not a 12-digit AWS account id", id)
	}
	return nil
}

// ParseRoleARN parses an IAM role ARN, arn:<partition>:iam::<account>:role/<name>
// (with an optional path before the name, and a name of 1 to 64
// characters, as IAM allows), or returns an EINVALID error naming the field
// "role_arns".
func ParseRoleARN(s string) (arn.ARN, error) {
	a, err := arn.Parse(s)
	path, isRole := strings.CutPrefix(a.Resource, "role/")
	name := path[strings.LastIndexByte(path, '/')+1:]
	if err != nil || a.Partition == "" || a.Service != "iam" || a.Region != "" || !isRole ||
		name == "" || len(name) > 64 || !accountPattern.MatchString(a.AccountID) {
		return arn.ARN{}, vpnfacade.Errorf(vpnfacade.EINVALID, "role_arns",
			"%.64q is not an IAM role ARN like arn:aws:iam::123456789012:role/name", s)
	}
	return a, nil
}

// retryer returns the factory of the SDK retryer every client uses; each
// client gets its own, so that adaptive mode's client-side rate limit and the
// retry quota are per partition, as AWS's throttling is.
func retryer(cfg Options, base aws.Config) func() aws.Retryer {
	mode := cmp.Or(cfg.RetryMode, base.RetryMode, aws.RetryModeStandard)
	attempts := cmp.Or(cfg.MaxAttempts, base.RetryMaxAttempts)
	standard := func(o *retry.StandardOptions) {
		if attempts > 0 {
			o.MaxAttempts = attempts
		}
		if cfg.MaxBackoff > 0 {
			o.MaxBackoff = cfg.MaxBackoff
		}
	}
	return func() aws.Retryer {
		if mode == aws.RetryModeAdaptive {
			return retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
				o.StandardOptions = append(o.StandardOptions, standard)
			})
		}
		return retry.NewStandard(standard)
	}
}

// Partitions yields the (account id, region) of every known partition,
// accounts in configuration order (the default credentials' first), regions
// within. The default credentials' account is known once Prepare succeeded
// (or when Options.AccountID names it).
func (s *Source) Partitions() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for _, p := range s.parts.Load().list {
			if !yield(p.accountID, p.region) {
				return
			}
		}
	}
}

// Regions returns the regions the Source reads, in configuration order.
func (s *Source) Regions() []string { return slices.Clone(s.regions) }

// Partition returns the partition of accountID in region, or nil when the
// Source does not read it.
func (s *Source) Partition(accountID, region string) *Partition {
	return s.parts.Load().byKey[vpnfacade.PartitionKey{AccountID: accountID, Region: region}]
}

// Read reads one partition completely (see Partition.Read).
func (s *Source) Read(ctx context.Context, accountID, region string) ([]*clientvpnv1.ClientVpnEndpoint, error) {
	p := s.Partition(accountID, region)
	if p == nil {
		return nil, vpnfacade.Errorf(vpnfacade.ENOTFOUND, "", "partition %s/%s is not configured", accountID, region)
	}
	return p.Read(ctx)
}

// Stats returns every partition's counters, in Partitions order.
func (s *Source) Stats() []Stats {
	list := s.parts.Load().list
	out := make([]Stats, len(list))
	for i, p := range list {
		out[i] = p.Stats()
	}
	return out
}
