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
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vpnfacade/vpnfacade"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
)

// DefaultPageSize is the MaxResults of every DescribeClientVpnEndpoints
// call unless Config.PageSize says otherwise: EC2's maximum, so that a
// refresh costs as few calls as possible.
const DefaultPageSize = 1000

// Config says which partitions a Source reads and how it calls EC2.
type Config struct {
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
	// empty and that account is read, New asks STS GetCallerIdentity once.
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
	// Registerer, when set, receives the Source's per-partition counters
	// (see Collector). Pass the service's own registry, not the global one.
	Registerer prometheus.Registerer
}

// Source reads Client VPN endpoints from every configured partition. It is
// safe for concurrent use.
type Source struct {
	partitions []*Partition
	byKey      map[string]*Partition
}

// regionPattern is what a region name looks like (us-east-1, eu-isoe-west-1,
// us-gov-west-1, cn-north-1). It only rejects obvious typos.
var regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z0-9]+)+-[0-9]+$`)

// accountPattern is a 12-digit AWS account id.
var accountPattern = regexp.MustCompile(`^[0-9]{12}$`)

// New loads the SDK's default configuration, resolves every partition's
// account and builds one EC2 client per partition. It calls STS only to
// learn the default credentials' account when Config.AccountID is empty;
// roles are assumed lazily, on each partition's first read.
func New(ctx context.Context, cfg Config) (*Source, error) {
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
	base.Retryer = retryer(cfg, base)
	base.RetryMode, base.RetryMaxAttempts = "", 0 // consumed by retryer
	base.APIOptions = append(base.APIOptions, func(stack *middleware.Stack) error {
		return stack.Build.Add(requestBodyWithoutWriteTo{}, middleware.After)
	})
	stsClient := sts.NewFromConfig(base)

	type account struct {
		id    string
		creds aws.CredentialsProvider
	}
	var accounts []account
	if !cfg.SkipDefaultAccount {
		id := cfg.AccountID
		if id == "" {
			out, err := stsClient.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			if err != nil {
				return nil, fmt.Errorf("upstream: find the default credentials' account (set the account id to skip this call): %w", err)
			}
			id = aws.ToString(out.Account)
		}
		accounts = append(accounts, account{id: id, creds: base.Credentials})
	}
	session := cmp.Or(cfg.RoleSessionName, "vpnfacade")
	for i, role := range roles {
		provider := stscreds.NewAssumeRoleProvider(stsClient, cfg.RoleARNs[i], func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = session
		})
		accounts = append(accounts, account{id: role.AccountID, creds: aws.NewCredentialsCache(provider)})
	}

	s := &Source{byKey: map[string]*Partition{}}
	pageSize := cmp.Or(cfg.PageSize, DefaultPageSize)
	for _, a := range accounts {
		for _, region := range cfg.Regions {
			key := a.id + "/" + region
			if s.byKey[key] != nil {
				return nil, vpnfacade.Errorf(vpnfacade.EINVALID, "role_arns",
					"account %s is configured twice (the default credentials' account and a role, or two roles)", a.id)
			}
			p := newPartition(base, a.id, region, a.creds, pageSize, log)
			s.partitions = append(s.partitions, p)
			s.byKey[key] = p
		}
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(s.Collector()); err != nil {
			return nil, fmt.Errorf("upstream: register metrics: %w", err)
		}
	}
	return s, nil
}

// validate checks cfg and returns the parsed role ARNs.
func validate(cfg Config) ([]arn.ARN, error) {
	if len(cfg.Regions) == 0 {
		return nil, vpnfacade.Errorf(vpnfacade.EINVALID, "regions", "at least one region is required, e.g. eu-west-1; none was configured and the AWS configuration names none (AWS_REGION)")
	}
	seen := map[string]bool{}
	for _, r := range cfg.Regions {
		if !regionPattern.MatchString(r) {
			return nil, vpnfacade.Errorf(vpnfacade.EINVALID, "regions", "%q is not a region name like eu-west-1", r)
		}
		if seen[r] {
			return nil, vpnfacade.Errorf(vpnfacade.EINVALID, "regions", "region %s is listed twice", r)
		}
		seen[r] = true
	}
	if cfg.AccountID != "" && !accountPattern.MatchString(cfg.AccountID) {
		return nil, vpnfacade.Errorf(vpnfacade.EINVALID, "account_id", "%q is not a 12-digit AWS account id", cfg.AccountID)
	}
	if cfg.SkipDefaultAccount && len(cfg.RoleARNs) == 0 {
		return nil, vpnfacade.Errorf(vpnfacade.EINVALID, "role_arns", "at least one role is required when the default account is skipped")
	}
	roles := make([]arn.ARN, len(cfg.RoleARNs))
	for i, s := range cfg.RoleARNs {
		a, err := arn.Parse(s)
		if err != nil || a.Service != "iam" || !strings.HasPrefix(a.Resource, "role/") || !accountPattern.MatchString(a.AccountID) {
			return nil, vpnfacade.Errorf(vpnfacade.EINVALID, "role_arns",
				"%q is not an IAM role ARN like arn:aws:iam::123456789012:role/name", s)
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

// retryer returns the factory of the SDK retryer every client uses; each
// client gets its own, so that adaptive mode's client-side rate limit and the
// retry quota are per partition, as AWS's throttling is.
func retryer(cfg Config, base aws.Config) func() aws.Retryer {
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

// Partitions yields the (account id, region) of every partition, accounts
// in configuration order (the default credentials' first), regions within.
func (s *Source) Partitions() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for _, p := range s.partitions {
			if !yield(p.accountID, p.region) {
				return
			}
		}
	}
}

// Regions returns the regions the Source reads, in configuration order.
func (s *Source) Regions() []string {
	var out []string
	for _, p := range s.partitions {
		if !slices.Contains(out, p.region) {
			out = append(out, p.region)
		}
	}
	return out
}

// Partition returns the partition of accountID in region, or nil when the
// Source does not read it.
func (s *Source) Partition(accountID, region string) *Partition {
	return s.byKey[accountID+"/"+region]
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
	out := make([]Stats, len(s.partitions))
	for i, p := range s.partitions {
		out[i] = p.Stats()
	}
	return out
}
